: nothing to set up
