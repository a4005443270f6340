//! strata-layer (being written)
