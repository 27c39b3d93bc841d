"""The clinician's chat page: static HTML, CSS and JavaScript served by the API itself."""
