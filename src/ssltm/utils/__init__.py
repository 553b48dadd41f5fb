"""Config resolvers, reporting and Lightning helpers."""
