import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { decline } from "./api";
import { Dialog } from "@/shared/ui/Dialog";

/** Asks for the reason, then declines (cancels) the request. */
export function DeclineDialog({
  id,
  who,
  onDone,
  onClose,
}: {
  id: string;
  /** "Ada Lovelace, Mon 7 Dec 09:30 (Europe/Berlin)". */
  who: string;
  onDone: () => void;
  onClose: () => void;
}) {
  const form = useForm({ reason: "" });
  const save = form.submit(async (v) => {
    await decline(id, v.reason.trim());
    onDone();
  });
  return (
    <Dialog labelledBy={`${form.id}-title`} onClose={onClose}>
      <form onSubmit={save}>
        <h2 id={`${form.id}-title`}>Decline request</h2>
        <p>{who}</p>
        <Field
          form={form}
          name="reason"
          label="Reason"
          schema="CancelRequest"
          multiline
          hint="The patient sees this. For example: “I am not available then; please choose another time.”"
        />
        <FormErrors form={form} />
        <div class="row">
          <Submit form={form}>Decline this request</Submit>
          <button type="button" class="button secondary" onClick={onClose}>
            Keep request
          </button>
        </div>
      </form>
    </Dialog>
  );
}
