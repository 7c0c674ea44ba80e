"""What a project declares: a model's declaration parsed and checked (spec), the open registries
of models, data sets, exporters and runtimes (registry), and the kinds of file a declaration may
name, recognised by their bytes (file_kinds). Imports no framework."""
