"""Every request and response body of the API, one module per resource (``common``: what they
share). camelCase on the wire (as in the integration quickstart's API examples), snake_case in
Python."""
