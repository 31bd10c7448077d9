"""Report renderers: every one reads the report as its JSON form, so a saved report re-renders identically."""
