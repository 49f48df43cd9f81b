"""One module per action family; importing a module registers its actions."""
