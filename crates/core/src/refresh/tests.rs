//! Unit tests of the refresher and engine against a scripted provider.
