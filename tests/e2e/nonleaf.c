/* The C side of the non-leaf differential test: the same function as nonleaf.rs. */
int g(int x);
int f(int x) { return g(g(x)); }
