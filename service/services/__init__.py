"""Use cases between the routes and the repositories."""
