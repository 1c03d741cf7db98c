"""Validates FHIR JSON read from stdin with fhir.resources' R4B models (an independent FHIR
library): one resource, or a JSON array of them. Each is parsed by the model class its
`resourceType` names (a Bundle validates every resource in its entries too). Exits 0 and prints
the resource types checked, or exits 1 with the validation error."""

import json
import sys

from fhir.resources.R4B import get_fhir_model_class


def validate(resource):
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        raise ValueError(f"no resourceType in {json.dumps(resource)[:200]}")
    model = get_fhir_model_class(kind)
    model.model_validate(resource)
    return kind


def main():
    document = json.load(sys.stdin)
    resources = document if isinstance(document, list) else [document]
    try:
        kinds = [validate(resource) for resource in resources]
    except Exception as error:  # noqa: BLE001 - every failure is reported the same way
        print(f"invalid FHIR: {error}", file=sys.stderr)
        sys.exit(1)
    print(" ".join(kinds))


if __name__ == "__main__":
    main()
