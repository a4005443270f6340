//! strata-context (being written)
