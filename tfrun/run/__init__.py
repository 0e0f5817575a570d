"""Running terraform in stacks: `engine` (a whole run), `scheduler` (generic, over a graph),
`stack` (the one path that runs terraform in a stack), `locks` (per stack, plugin cache)."""
