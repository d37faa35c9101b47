//! Image commands (images, import, load, rmi).
