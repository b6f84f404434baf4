"""Reference pages generated from the code at build time (see hooks.py): the HTTP API from the
OpenAPI document, the CLI from the Typer app, the configuration from the settings and the
server's options, the Prometheus metrics from the server's registry."""
