//! The config hash against docker-compose 1.29 outputs.
