/* Calls one of the Rust object's functions; the other is dropped by --gc-sections. */
int keep_a(void);
int main(void) { return keep_a() == 42 ? 0 : 1; }
