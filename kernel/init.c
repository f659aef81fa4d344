// SPDX-License-Identifier: GPL-2.0
/*
 * The first process of the kernels `./x kernel --arch arm64|riscv64` boots:
 * it exercises ftrace on the kernel's Rust functions and reports on the
 * console, one `PFE-...` line per fact, for the driver to check
 * (xtask/src/kernel/console.rs). Built static with the kernel tree's own
 * nolibc (`tools/include/nolibc`), so it needs no C library and no FP
 * registers.
 *
 * What it does, in order:
 *  1. mounts sysfs and tracefs;
 *  2. prints every function ftrace knows (`available_filter_functions`),
 *     which the driver matches against the records in the Rust objects;
 *  3. function tracer on them and on the module to come (`:mod:`), loads
 *     the Rust sample module (finit_module), lists its functions and where
 *     its text is, prints the trace, unloads it (delete_module, so its
 *     `Drop` runs), prints the trace again;
 *  4. the same with the function_graph tracer, which also hooks returns;
 *  5. runs the kernel's redirection test (rust_ftrace_test.c, reporting in
 *     the kernel log) with no tracer on;
 *  6. asks tracefs to filter on the notrace Rust function;
 *  7. where the initramfs has the live patch of Rust functions (x86_64,
 *     samples/livepatch/livepatch-rust-ftrace.c): traces the test's
 *     trigger, switches the tracers on and off 20 times, and live-patches
 *     Rust functions, once while a task sleeps in an unpatched Rust frame
 *     and once while it sleeps in a patched one (the transition waits
 *     until the task is released);
 *  8. powers off (x86_64: restarts, which ends qemu -no-reboot).
 */

#include "nolibc.h"

#ifndef O_APPEND
#define O_APPEND 02000
#endif

#define TRACING "/sys/kernel/tracing/"
#define MODULE_NAME "rust_minimal"

static char buf[1 << 16];

static void say(const char *a, const char *b, const char *c)
{
	fputs(a, stdout);
	if (b)
		fputs(b, stdout);
	if (c)
		fputs(c, stdout);
	fputs("\n", stdout);
}

static void say_num(const char *what, long n)
{
	printf("%s %ld\n", what, n);
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int contains(const char *s, const char *needle)
{
	size_t n = strlen(needle);

	for (; *s; s++)
		if (strncmp(s, needle, n) == 0)
			return 1;
	return 0;
}

/* Writes `text` to `path`; returns 0 or -errno. */
static int write_file(const char *path, const char *text, int append)
{
	int fd = open(path, O_WRONLY | (append ? O_APPEND : O_TRUNC), 0);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* Calls `line_fn` on every line of `path`; returns the number of lines. */
static long each_line(const char *path, void (*line_fn)(const char *, void *), void *arg)
{
	static char line[1024];
	size_t used = 0;
	long lines = 0;
	int fd = open(path, O_RDONLY, 0);
	ssize_t n, i;

	if (fd < 0) {
		say("PFE-ERROR cannot open ", path, NULL);
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				line[used] = 0;
				line_fn(line, arg);
				lines++;
				used = 0;
			} else if (used < sizeof(line) - 1) {
				line[used++] = buf[i];
			}
		}
	}
	close(fd);
	return lines;
}

/* Every traceable function, for the driver to match against the records. */
static void list_all(const char *line, void *count)
{
	say("PFE-AFF ", line, NULL);
	if (starts_with(line, "_R") || starts_with(line, "rust_ftrace_"))
		++*(long *)count;
}

static void list_module(const char *line, void *count)
{
	if (contains(line, "[" MODULE_NAME "]")) {
		say("PFE-AFF-MODULE ", line, NULL);
		++*(long *)count;
	}
}

/* Every line of the trace (the filter leaves only Rust functions in it). */
static void print_trace(const char *line, void *tag)
{
	if (line[0] != '#' && line[0] != 0)
		say("PFE-TRACE ", (const char *)tag, line);
}

/* Where the module's .text is, to name its functions after it is gone. */
static void print_module_text(void)
{
	int fd = open("/sys/module/" MODULE_NAME "/sections/.text", O_RDONLY, 0);
	ssize_t n;

	if (fd < 0) {
		say_num("PFE-ERROR module sections", -errno);
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	say("PFE-MODULE-TEXT ", buf, NULL);
}

static int load_module(void)
{
	int fd = open("/" MODULE_NAME ".ko", O_RDONLY, 0);
	long ret;

	if (fd < 0)
		return -errno;
	ret = my_syscall3(__NR_finit_module, fd, "", 0);
	close(fd);
	return ret;
}

static int unload_module(void)
{
	return my_syscall2(__NR_delete_module, MODULE_NAME, O_NONBLOCK);
}

/*
 * One tracer over the Rust functions while the module comes and goes. The
 * trace is printed twice: after loading, while the module's symbols still
 * name its functions, and after unloading (its `Drop`), when only their
 * addresses are left. When ftrace refuses the filter (no Rust function has
 * an entry), the module still comes and goes, untraced: an empty filter
 * would trace every function. Filters end with a newline, so that write()
 * parses them and reports an error rather than close().
 */
static void trace_with(const char *tracer, const char *tag, const char *unload_tag)
{
	long listed = 0;
	int ret, tracing = 0;

	write_file(TRACING "tracing_on", "0", 0);
	write_file(TRACING "current_tracer", "nop", 0);
	write_file(TRACING "trace", "", 0);
	ret = write_file(TRACING "set_ftrace_filter", "_R*\n", 0);
	say("PFE-FILTER-RUST ", tag, NULL);
	say_num("PFE-FILTER-RUST-RESULT", ret);
	if (ret == 0) {
		write_file(TRACING "set_ftrace_filter", "rust_ftrace_*\n", 1);
		/* Applied to the module's functions when it is loaded. */
		write_file(TRACING "set_ftrace_filter", ":mod:" MODULE_NAME "\n", 1);
		ret = write_file(TRACING "current_tracer", tracer, 0);
		say_num("PFE-TRACER-SET", ret);
		tracing = ret == 0;
	} else {
		write_file(TRACING "set_ftrace_filter", "", 0);
		say("PFE-TRACER-SKIPPED ", tracer, NULL);
	}
	if (tracing)
		write_file(TRACING "tracing_on", "1", 0);
	say_num("PFE-MODULE-LOAD", load_module());
	write_file(TRACING "tracing_on", "0", 0);
	if (tag[0] == 'f') {
		each_line(TRACING "available_filter_functions", list_module, &listed);
		say_num("PFE-AFF-MODULE-COUNT", listed);
	}
	print_module_text();
	if (tracing) {
		each_line(TRACING "trace", print_trace, (void *)tag);
		write_file(TRACING "trace", "", 0);
		write_file(TRACING "tracing_on", "1", 0);
	}
	say_num("PFE-MODULE-UNLOAD", unload_module());
	if (tracing) {
		write_file(TRACING "tracing_on", "0", 0);
		each_line(TRACING "trace", print_trace, (void *)unload_tag);
	}
	write_file(TRACING "current_tracer", "nop", 0);
	write_file(TRACING "set_ftrace_filter", "", 0);
}

/* x86_64: the live patch of Rust functions, and the test's parameters. */
#define LIVEPATCH_FILE "/livepatch-rust-ftrace.ko"
#define LIVEPATCH_NAME "livepatch_rust_ftrace"
#define LIVEPATCH_SYSFS "/sys/kernel/livepatch/" LIVEPATCH_NAME "/"
#define TEST_PARAMS "/sys/module/rust_ftrace_test/parameters/"

static long now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The number in a sysfs file, or -errno. */
static long read_number(const char *path)
{
	char text[32];
	int fd = open(path, O_RDONLY, 0);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	text[n] = 0;
	return atol(text);
}

static int load_file(const char *path, const char *params)
{
	int fd = open(path, O_RDONLY, 0);
	long ret;

	if (fd < 0)
		return -errno;
	ret = my_syscall3(__NR_finit_module, fd, params, 0);
	close(fd);
	return ret;
}

/* Lines of the trace that name `what`. */
static void count_named(const char *line, void *what)
{
	if (line[0] != '#' && contains(line, ((const char **)what)[0]))
		++*(long *)((const char **)what)[1];
}

static long trace_count(const char *name)
{
	long hits = 0;
	const void *what[2] = { name, &hits };

	each_line(TRACING "trace", count_named, what);
	return hits;
}

static void print_run_trace(const char *line, void *unused)
{
	if (line[0] != '#' && line[0] != 0)
		say("PFE-RUN-TRACE ", line, NULL);
}

/*
 * The function tracer, switched on after boot, over the test's functions
 * while its trigger runs; then 20 times on and off (function and
 * function_graph in turn) over every Rust function, each time calling
 * rust_ftrace_target once.
 */
static void trace_the_trigger(void)
{
	int i, ret, ok = 0;
	long hits;

	write_file(TRACING "trace", "", 0);
	ret = write_file(TRACING "set_ftrace_filter", "rust_ftrace_*\n", 0);
	say_num("PFE-RUN-FILTER", ret);
	if (ret) {
		/* As in trace_with(): an empty filter would trace everything. */
		write_file(TRACING "set_ftrace_filter", "", 0);
		say("PFE-RUN-SKIPPED no Rust function to trace", NULL, NULL);
		return;
	}
	say_num("PFE-RUN-TRACER", write_file(TRACING "current_tracer", "function", 0));
	write_file(TRACING "tracing_on", "1", 0);
	say_num("PFE-RUN-RUN", write_file(TEST_PARAMS "run", "1", 0));
	write_file(TRACING "tracing_on", "0", 0);
	each_line(TRACING "trace", print_run_trace, NULL);
	say_num("PFE-RUN-TRACED rust_ftrace_target", trace_count("rust_ftrace_target"));
	write_file(TRACING "current_tracer", "nop", 0);

	write_file(TRACING "set_ftrace_filter", "_R*\n", 0);
	write_file(TRACING "set_ftrace_filter", "rust_ftrace_*\n", 1);
	for (i = 1; i <= 20; i++) {
		const char *tracer = i % 2 ? "function" : "function_graph";
		int on, off;

		write_file(TRACING "trace", "", 0);
		on = write_file(TRACING "current_tracer", tracer, 0);
		write_file(TRACING "tracing_on", "1", 0);
		write_file(TEST_PARAMS "call", "1", 0);
		write_file(TRACING "tracing_on", "0", 0);
		hits = trace_count("rust_ftrace_target");
		off = write_file(TRACING "current_tracer", "nop", 0);
		printf("PFE-CYCLE %d %s on %d off %d traced %ld\n", i, tracer, on, off, hits);
		ok += on == 0 && off == 0 && hits > 0;
	}
	printf("PFE-CYCLES %d of 20\n", ok);
	write_file(TRACING "set_ftrace_filter", "", 0);
	write_file(TRACING "trace", "", 0);
}

/* Polls the live patch's `transition` until 0; returns ms, or -1. */
static long transition_done(long limit_ms)
{
	long start = now_ms();

	while (read_number(LIVEPATCH_SYSFS "transition") == 1) {
		if (now_ms() - start > limit_ms)
			return -1;
		msleep(50);
	}
	return now_ms() - start;
}

/* Disables the live patch, waits for that transition, unloads it. */
static void unpatch(const char *tag)
{
	int i;

	say("PFE-KLP-DISABLE ", tag, NULL);
	say_num("PFE-KLP-DISABLE-RESULT", write_file(LIVEPATCH_SYSFS "enabled", "0", 0));
	say_num("PFE-KLP-DISABLE-MS", transition_done(10000));
	/* klp lets go of the module once its sysfs directory is gone. */
	for (i = 0; i < 100 && read_number(LIVEPATCH_SYSFS "enabled") != -ENOENT; i++)
		msleep(50);
	say_num("PFE-KLP-UNLOAD", my_syscall2(__NR_delete_module, LIVEPATCH_NAME, O_NONBLOCK));
}

/*
 * Live patching Rust functions. A kthread parks inside the Rust function
 * rust_ftrace_park. First the patch of rust_ftrace_target alone: its
 * transition must complete although the sleeping task has a Rust frame on
 * its stack (klp can tell only if the unwinder gets through that frame).
 * Then the patch of both: its transition must wait while the task sleeps
 * in rust_ftrace_park and complete once it is released. Each time the
 * test's calls must reach the replacement while the patch is on, and the
 * Rust function again after it is disabled.
 */
static void livepatch(void)
{
	long ret, waiting;

	say_num("PFE-PARK 1", write_file(TEST_PARAMS "park", "1", 0));

	ret = load_file(LIVEPATCH_FILE, "park=0");
	say_num("PFE-KLP-LOAD target-only", ret);
	if (ret == 0) {
		say_num("PFE-KLP-ENABLED", read_number(LIVEPATCH_SYSFS "enabled"));
		say_num("PFE-KLP-TRANSITION-MS target-only", transition_done(10000));
		say_num("PFE-KLP-CALL", write_file(TEST_PARAMS "call", "1", 0));
		unpatch("target-only");
		say_num("PFE-KLP-CALL", write_file(TEST_PARAMS "call", "1", 0));
	}

	ret = load_file(LIVEPATCH_FILE, "");
	say_num("PFE-KLP-LOAD both", ret);
	if (ret == 0) {
		say_num("PFE-KLP-ENABLED", read_number(LIVEPATCH_SYSFS "enabled"));
		waiting = transition_done(3000);
		say_num("PFE-KLP-TRANSITION-MS while-parked", waiting);
		say_num("PFE-KLP-TRANSITION while-parked", read_number(LIVEPATCH_SYSFS "transition"));
	}
	say_num("PFE-PARK 0", write_file(TEST_PARAMS "park", "0", 0));
	if (ret == 0) {
		say_num("PFE-KLP-TRANSITION-MS after-release", transition_done(10000));
		say_num("PFE-KLP-RUN", write_file(TEST_PARAMS "run", "1", 0));
		say_num("PFE-KLP-CALL", write_file(TEST_PARAMS "call", "1", 0));
		unpatch("both");
		say_num("PFE-KLP-RUN", write_file(TEST_PARAMS "run", "1", 0));
		say_num("PFE-KLP-CALL", write_file(TEST_PARAMS "call", "1", 0));
	}
}

static int have(const char *path)
{
	int fd = open(path, O_RDONLY, 0);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

int main(void)
{
	long rust = 0, total;

	say("PFE-INIT start", NULL, NULL);
	mkdir("/sys", 0755);
	say_num("PFE-MOUNT sysfs", mount("sysfs", "/sys", "sysfs", 0, NULL));
	say_num("PFE-MOUNT tracefs", mount("tracefs", TRACING, "tracefs", 0, NULL));

	total = each_line(TRACING "available_filter_functions", list_all, &rust);
	printf("PFE-AFF-COUNT %ld of %ld\n", rust, total);

	/* Returns show the function's name too, for the driver to pair them. */
	write_file(TRACING "options/funcgraph-tail", "1", 0);
	trace_with("function", "function ", "function-unload ");
	trace_with("function_graph", "graph ", "graph-unload ");

	say_num("PFE-REDIRECT-RUN",
		write_file("/sys/module/rust_ftrace_test/parameters/run", "1", 0));
	say_num("PFE-NOTRACE-FILTER",
		write_file(TRACING "set_ftrace_filter", "rust_ftrace_notrace\n", 0));
	write_file(TRACING "set_ftrace_filter", "", 0);

	if (have(LIVEPATCH_FILE)) {
		trace_the_trigger();
		livepatch();
	}

	say("PFE-INIT done", NULL, NULL);
#ifdef __x86_64__
	/*
	 * x86 without ACPI (tinyconfig) cannot power off, only halt; a
	 * restart ends qemu just as well when it runs with -no-reboot.
	 */
	reboot(LINUX_REBOOT_CMD_RESTART);
#else
	reboot(LINUX_REBOOT_CMD_POWER_OFF);
#endif
	return 0;
}
