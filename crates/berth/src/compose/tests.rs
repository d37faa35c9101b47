//! Unit tests of loading: YAML positions, interpolation, keys, merge, validation.
