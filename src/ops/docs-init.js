// validatorUrl: null keeps the page from asking validator.swagger.io about the spec.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null });
