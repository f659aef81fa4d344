/* Functions for pfe-check's real-compiler objects (see make.sh). */
int counter;
int leaf(int x) { return x * 3 + 1; }
int caller(int x) { return leaf(x) + leaf(x + 1); }
void store(int x) { counter = x; }
int sum(const int *p, int n) {
    int s = 0;
    for (int i = 0; i < n; i++)
        s += p[i] * (i + 1);
    return s;
}
int _start(void) { return caller(counter); }
