/* The C side of the differential test: the same empty function as entry.rs. */
void f(void) {}
