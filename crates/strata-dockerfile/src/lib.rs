//! strata-dockerfile (being written): parser, word expansion and lint for Dockerfiles.

// Owned by the parser work: syntax, instructions, errors, JSON dump.
// Owned by the expansion/lint work: `expand` (BuildKit's shell lexer) and `lint`.
