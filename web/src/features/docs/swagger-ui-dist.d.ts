/** The part of swagger-ui-dist's self-contained bundle that the docs page uses (it ships no types). */
declare module "swagger-ui-dist/swagger-ui-es-bundle.js" {
  interface SwaggerRequest {
    url: string;
    headers: Record<string, string>;
    [key: string]: unknown;
  }
  interface SwaggerOptions {
    domNode: HTMLElement;
    url?: string;
    spec?: object;
    validatorUrl?: string | null;
    deepLinking?: boolean;
    docExpansion?: "list" | "full" | "none";
    defaultModelsExpandDepth?: number;
    displayRequestDuration?: boolean;
    filter?: boolean | string;
    tryItOutEnabled?: boolean;
    persistAuthorization?: boolean;
    withCredentials?: boolean;
    syntaxHighlight?: false | { activated?: boolean; theme?: string };
    requestInterceptor?: (request: SwaggerRequest) => SwaggerRequest | Promise<SwaggerRequest>;
    onComplete?: () => void;
    [key: string]: unknown;
  }
  interface SwaggerUIInstance {
    [key: string]: unknown;
  }
  const SwaggerUI: (options: SwaggerOptions) => SwaggerUIInstance;
  export default SwaggerUI;
}
