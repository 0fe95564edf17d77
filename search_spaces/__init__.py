"""The built-in search spaces, as data: one YAML file per grid space, and an example Python space. Installed
as ``nasproxy.search_spaces``; ``nasproxy.spaces.load_space`` finds them by name."""
