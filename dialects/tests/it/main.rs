//! Property tests of `floe-dialects`: whatever text arrives from a client,
//! analysis and translation return a result or an error, never a panic; the
//! translation cache answers as translation does.

mod fuzz;
mod shapes;
