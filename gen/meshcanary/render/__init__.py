"""Model to bytes: Istio resources, the Kustomize tree, and writing it to disk safely;
`repository` renders every environment of a repository at once."""
