//! The architectures `./x kernel` builds and boots, and each one's kernels
//! (variants), as data: config fragment, `KRUSTFLAGS`, the pad shape
//! `pfe-check` expects, the qemu line, the boot and what it must show.
//! A new architecture or variant is a new row here; only a new kind of
//! boot (`Boot`) needs code: the boot in `boot.rs`, its console check in
//! `console.rs`, an arm in `run`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
    Riscv64,
}

impl Arch {
    pub const NAMES: &'static str = "x86_64, arm64, riscv64";

    pub fn parse(name: &str) -> Option<Arch> {
        ARCHES.iter().find(|a| a.name == name).map(|a| a.arch)
    }

    pub fn data(self) -> &'static ArchData {
        ARCHES.iter().find(|a| a.arch == self).expect("every Arch has its data")
    }
}

/// An architecture: everything that differs between them is data here.
pub struct ArchData {
    pub arch: Arch,
    /// `--arch`, and the name in directories and logs.
    pub name: &'static str,
    /// kbuild's `ARCH`.
    pub kbuild: &'static str,
    /// The image qemu boots, in the build directory.
    pub image: &'static str,
    pub qemu: &'static str,
    /// The machine, before `-cpu` (given per variant).
    pub machine: &'static [&'static str],
    pub console: &'static str,
    /// More kernel command line, after `console=` and `panic=-1`.
    pub cmdline: &'static str,
    /// Debian packages for qemu and the init's compiler.
    pub packages: &'static [&'static str],
    /// Config lines of this architecture, after tinyconfig.
    pub fragment: &'static str,
    /// The init's compiler and flags (no FP registers, as the kernels here
    /// have no FPU support); None where the boot needs no init.
    pub init_cc: Option<(&'static str, &'static [&'static str])>,
    /// `llvm-objdump-14` options: the extensions to decode by name, and
    /// on RISC-V `c.nop` rather than its alias `nop`.
    pub objdump: &'static [&'static str],
    pub variants: &'static [Variant],
}

/// One kernel of an architecture: its config, flags, audit and boot.
pub struct Variant {
    pub name: &'static str,
    /// For the step headings.
    pub what: &'static str,
    pub fragment: &'static str,
    /// `KRUSTFLAGS`: extra Rust flags, after the kernel's own.
    pub krustflags: &'static str,
    /// `pfe-check --expect` for every rustc-built object.
    pub expect: &'static str,
    /// `pfe-check --align`.
    pub align: Option<u64>,
    /// qemu's `-cpu`.
    pub cpu: Option<&'static str>,
    pub boot: Boot,
    /// The first instructions of the test's `rust_ftrace_target` in the
    /// linked `vmlinux` (ftrace boots only): where the pad and the landing
    /// pad are, after the link.
    pub entry: &'static [&'static str],
    /// More make variables (`NAME=value` on make's command line, where
    /// they override the Makefiles' own): the IBT control's Rust flags.
    pub make_vars: &'static [&'static str],
    /// Whether Rust code has jump tables where objtool reads vmlinux.o
    /// (the IBT control): objtool must then name Rust symbols, which shows
    /// the IBT kernel's check can fail.
    pub jump_tables: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Boot {
    /// Until the Rust sample (built in) prints.
    Sample,
    /// The project's init, ftrace on Rust functions; `padded` says whether
    /// the Rust code has the ftrace entry (the control has not);
    /// `livepatch`, whether the initramfs also carries the kernel series'
    /// live patch of Rust functions (`samples/livepatch/`), for which the
    /// init then also traces the test's trigger, switches the tracers 20
    /// times and live-patches Rust functions (x86_64, where 6.1 has
    /// `CONFIG_LIVEPATCH`).
    Ftrace { padded: bool, livepatch: bool },
}

/// The live patch module the x86_64 ftrace boots carry, in the build
/// directory (`CONFIG_SAMPLE_LIVEPATCH_RUST_FTRACE`).
pub const LIVEPATCH_MODULE: &str = "samples/livepatch/livepatch-rust-ftrace.ko";


/// x86's platform lines: 6.1 builds a 32-bit kernel from tinyconfig unless
/// asked; the console lines are what a serial boot needs to show
/// `pr_info!`. tinyconfig is 32-bit and so keeps the 32-bit stack-frame
/// warning limit, 1024, after `64BIT=y`; clang-14 finds `do_sys_poll`'s
/// frame (in C, `fs/select.c`) 1032 bytes, so the limit is set to
/// Kconfig's own default for 64-bit kernels, 2048.
const X86_FRAGMENT: &str = "\
CONFIG_64BIT=y
CONFIG_FRAME_WARN=2048
CONFIG_PRINTK=y
CONFIG_TTY=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
";

/// The x86 call-padding kernel: Rust with its sample built in, `-Werror`
/// as on the other architectures.
const X86_SAMPLE_FRAGMENT: &str = "\
CONFIG_BINFMT_ELF=y
CONFIG_RUST=y
CONFIG_SAMPLES=y
CONFIG_SAMPLES_RUST=y
CONFIG_SAMPLE_RUST_MINIMAL=y
CONFIG_WERROR=y
";

/// What the x86_64 ftrace kernels add to the ftrace boots' lines: the
/// kernel's live patching (it needs `KALLSYMS_ALL`, so `DEBUG_KERNEL`, and
/// ORC for its consistency model) with the series' live patch of Rust
/// functions as a module, and `BUG`, so that a WARN or a BUG prints (on
/// tinyconfig they are silent).
macro_rules! x86_livepatch_lines {
    () => {
        "\
CONFIG_BUG=y
CONFIG_DEBUG_KERNEL=y
CONFIG_KALLSYMS_ALL=y
CONFIG_UNWINDER_ORC=y
CONFIG_LIVEPATCH=y
CONFIG_SAMPLE_LIVEPATCH=m
CONFIG_SAMPLE_LIVEPATCH_RUST_FTRACE=m
"
    };
}
const X86_LIVEPATCH_FRAGMENT: &str = x86_livepatch_lines!();

/// The x86_64 IBT kernel, as Debian builds amd64: the ftrace kernel's
/// lines (`X86_LIVEPATCH_FRAGMENT`) with Indirect Branch Tracking, which
/// gives C `-fcf-protection=branch -fno-jump-tables` and Rust, with the
/// kernel series, `-Zcf-protection=branch -Zno-jump-tables`; objtool then
/// reads the whole of vmlinux.o, Rust code included.
const X86_IBT_FRAGMENT: &str = concat!(x86_livepatch_lines!(), "CONFIG_X86_KERNEL_IBT=y\n");

/// What a traced arm64 or riscv64 kernel needs: an initramfs, sysfs (the
/// test's trigger), modules that unload, kallsyms (function names in
/// ftrace), the function and function_graph tracers with dynamic ftrace
/// and saved registers (redirection), Rust with the sample as a module and
/// the kernel series' test built in; `-Werror`, as the series makes 6.1's
/// Rust build warning-free with rustc 1.63.
const FTRACE_FRAGMENT: &str = "\
CONFIG_PRINTK=y
CONFIG_TTY=y
CONFIG_BINFMT_ELF=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_SYSFS=y
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_KALLSYMS=y
CONFIG_FTRACE=y
CONFIG_FUNCTION_TRACER=y
CONFIG_FUNCTION_GRAPH_TRACER=y
CONFIG_DYNAMIC_FTRACE=y
CONFIG_DYNAMIC_FTRACE_WITH_REGS=y
CONFIG_RUST=y
CONFIG_SAMPLES=y
CONFIG_SAMPLES_RUST=y
CONFIG_SAMPLE_RUST_MINIMAL=m
CONFIG_SAMPLE_RUST_FTRACE_TEST=y
CONFIG_WERROR=y
";

/// The x86 call-padding shape: 16 nops before each function, none after, the
/// pad (and so the function) 16-aligned, as `CONFIG_CALL_PADDING` kernels
/// (6.2 and later) ask of C with `-fpatchable-function-entry=16,16
/// -falign-functions=16`. 6.1 passes extra Rust flags through `KRUSTFLAGS`
/// (newer trees: `KBUILD_RUSTFLAGS`).
pub const RUST_FLAGS: &str = "-Zpatchable-function-entry=16,16 -Zmin-function-alignment=16";
/// The control kernels: the kernel's own `-Zpatchable-function-entry`
/// (the kernel series' kbuild patch) overridden by a later one asking for
/// none.
const NO_PADDING: &str = "-Zpatchable-function-entry=0";

/// `rust_ftrace_target`'s first instructions in the IBT kernels: the
/// landing pad, then ftrace's 5-byte entry, then the body.
const IBT_ENTRY: &[&str] = &["endbr64", "nopl 8(%rax,%rax)", "imulq $1000, %rdi, %rax # imm = 0x3E8"];

pub const ARCHES: &[ArchData] = &[
    ArchData {
        arch: Arch::X86_64,
        name: "x86_64",
        kbuild: "x86",
        image: "arch/x86/boot/bzImage",
        qemu: "qemu-system-x86_64",
        machine: &[],
        console: "ttyS0",
        // No PS/2 mouse: its probe prints into the middle of the ftrace
        // boots' listing of traceable functions, glued to a name.
        cmdline: "i8042.noaux",
        packages: &["qemu-system-x86", "gcc"],
        fragment: X86_FRAGMENT,
        init_cc: Some(("gcc", &["-mgeneral-regs-only"])),
        objdump: &[],
        variants: &[
            Variant {
                name: "sample",
                what: "x86 call padding (=16,16, 16-aligned), the Rust sample built in",
                fragment: X86_SAMPLE_FRAGMENT,
                krustflags: RUST_FLAGS,
                expect: "16,16",
                align: Some(16),
                cpu: None,
                boot: Boot::Sample,
                entry: &[],
                make_vars: &[],
                jump_tables: false,
            },
            Variant {
                name: "ftrace",
                what: "Rust with ftrace's 5-byte entry (=5), ftrace and livepatch on Rust functions",
                fragment: X86_LIVEPATCH_FRAGMENT,
                krustflags: "",
                expect: "5",
                align: None,
                cpu: None,
                boot: Boot::Ftrace { padded: true, livepatch: true },
                entry: &["nopl 8(%rax,%rax)", "imulq $1000, %rdi, %rax # imm = 0x3E8"],
                make_vars: &[],
                jump_tables: false,
            },
            Variant {
                name: "control",
                what: "the same kernel without the Rust entry (control)",
                fragment: X86_LIVEPATCH_FRAGMENT,
                krustflags: NO_PADDING,
                expect: "0",
                align: None,
                cpu: None,
                boot: Boot::Ftrace { padded: false, livepatch: true },
                entry: &["imulq $1000, %rdi, %rax # imm = 0x3E8"],
                make_vars: &[],
                jump_tables: false,
            },
            Variant {
                name: "ibt",
                what: "the ftrace kernel with IBT, as Debian's amd64 kernels (endbr64, then the 5-byte entry; no jump tables)",
                fragment: X86_IBT_FRAGMENT,
                krustflags: "",
                expect: "5",
                align: None,
                cpu: None,
                boot: Boot::Ftrace { padded: true, livepatch: true },
                entry: IBT_ENTRY,
                make_vars: &[],
                jump_tables: false,
            },
            Variant {
                name: "ibt-jump-tables",
                what: "the IBT kernel with jump tables in Rust code (the control of objtool's check)",
                fragment: X86_IBT_FRAGMENT,
                krustflags: "",
                expect: "5",
                align: None,
                cpu: None,
                boot: Boot::Ftrace { padded: true, livepatch: true },
                entry: IBT_ENTRY,
                // The kernel series' RUSTFLAGS_IBT without -Zno-jump-tables
                // (a flag rustc cannot switch off again later on its
                // command line): the landing pads stay, the jump tables
                // come back.
                make_vars: &["RUSTFLAGS_IBT=-Zcf-protection=branch"],
                jump_tables: true,
            },
        ],
    },
    ArchData {
        arch: Arch::Arm64,
        name: "arm64",
        kbuild: "arm64",
        image: "arch/arm64/boot/Image",
        qemu: "qemu-system-aarch64",
        machine: &["-M", "virt"],
        console: "ttyAMA0",
        cmdline: "",
        packages: &["qemu-system-arm", "gcc-aarch64-linux-gnu"],
        fragment: "\
CONFIG_SERIAL_AMBA_PL011=y
CONFIG_SERIAL_AMBA_PL011_CONSOLE=y
",
        init_cc: Some(("aarch64-linux-gnu-gcc", &["-mgeneral-regs-only"])),
        objdump: &["--mattr=+bti,+pauth"],
        variants: &[
            Variant {
                name: "ftrace",
                what: "Rust padded as C (=2), ftrace on Rust functions",
                fragment: "\
# CONFIG_ARM64_PTR_AUTH_KERNEL is not set
# CONFIG_ARM64_BTI_KERNEL is not set
",
                krustflags: "",
                expect: "2",
                align: None,
                cpu: Some("cortex-a57"),
                boot: Boot::Ftrace { padded: true, livepatch: false },
                entry: &["nop", "nop", "stp x29, x30, [sp, #-16]!"],
                make_vars: &[],
                jump_tables: false,
            },
            Variant {
                name: "control",
                what: "the same kernel without the Rust padding (control)",
                fragment: "\
# CONFIG_ARM64_PTR_AUTH_KERNEL is not set
# CONFIG_ARM64_BTI_KERNEL is not set
",
                krustflags: NO_PADDING,
                expect: "0",
                align: None,
                cpu: Some("cortex-a57"),
                boot: Boot::Ftrace { padded: false, livepatch: false },
                entry: &["stp x29, x30, [sp, #-16]!"],
                make_vars: &[],
                jump_tables: false,
            },
            Variant {
                name: "bti",
                what: "with BTI and pointer authentication (bti c, the nops, paciasp), on -cpu max",
                fragment: "\
CONFIG_ARM64_PTR_AUTH=y
CONFIG_ARM64_PTR_AUTH_KERNEL=y
CONFIG_ARM64_BTI=y
CONFIG_ARM64_BTI_KERNEL=y
",
                krustflags: "",
                expect: "2",
                align: None,
                // QEMU's own (IMPLEMENTATION DEFINED) pointer authentication
                // algorithm: the architected QARMA is slow under TCG.
                cpu: Some("max,pauth-impdef=on"),
                boot: Boot::Ftrace { padded: true, livepatch: false },
                entry: &["bti c", "nop", "nop", "paciasp", "stp x29, x30, [sp, #-16]!"],
                make_vars: &[],
                jump_tables: false,
            },
        ],
    },
    ArchData {
        arch: Arch::Riscv64,
        name: "riscv64",
        kbuild: "riscv",
        image: "arch/riscv/boot/Image",
        qemu: "qemu-system-riscv64",
        machine: &["-M", "virt", "-bios", "default"],
        console: "ttyS0",
        cmdline: "",
        // The init's nolibc includes the kernel's UAPI headers
        // (`asm/types.h`): the cross gcc only recommends them (through
        // `libc6-dev-riscv64-cross`), and `./x deps` installs no
        // Recommends (arm64's come with the build's `libc6-dev-arm64-cross`).
        packages: &["qemu-system-misc", "opensbi", "gcc-riscv64-linux-gnu", "linux-libc-dev-riscv64-cross"],
        // The virt machine's drivers (its interrupt controller above all:
        // without it the UART never probes and the console stays silent).
        fragment: "\
CONFIG_SOC_VIRT=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_SERIAL_OF_PLATFORM=y
CONFIG_RISCV_ISA_C=y
",
        init_cc: Some(("riscv64-linux-gnu-gcc", &["-march=rv64imac", "-mabi=lp64"])),
        objdump: &["--mattr=+c", "-M", "no-aliases"],
        variants: &[
            Variant {
                name: "ftrace",
                what: "Rust padded as C (=4 with compressed nops), ftrace on Rust functions",
                fragment: "",
                krustflags: "",
                expect: "4",
                align: None,
                cpu: None,
                boot: Boot::Ftrace { padded: true, livepatch: false },
                entry: &["c.nop", "c.nop", "c.nop", "c.nop"],
                make_vars: &[],
                jump_tables: false,
            },
            Variant {
                name: "control",
                what: "the same kernel without the Rust padding (control)",
                fragment: "",
                krustflags: NO_PADDING,
                expect: "0",
                align: None,
                cpu: None,
                boot: Boot::Ftrace { padded: false, livepatch: false },
                entry: &[],
                make_vars: &[],
                jump_tables: false,
            },
        ],
    },
];

impl ArchData {
    /// The whole config fragment of `variant`: what its kind of boot
    /// needs, then the architecture's lines, then the variant's.
    pub fn fragment(&self, variant: &Variant) -> String {
        let common = match variant.boot {
            Boot::Ftrace { .. } => FTRACE_FRAGMENT,
            Boot::Sample => "",
        };
        format!("{common}{}{}", self.fragment, variant.fragment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::config::{config_value, wanted};

    #[test]
    fn every_arch_has_data_and_a_name_to_parse() {
        for arch in [Arch::X86_64, Arch::Arm64, Arch::Riscv64] {
            let data = arch.data();
            assert_eq!(Arch::parse(data.name), Some(arch));
            assert!(Arch::NAMES.contains(data.name));
            assert!(!data.variants.is_empty());
        }
        assert_eq!(Arch::parse("aarch64"), None);
    }

    #[test]
    fn fragments_ask_for_rust_werror_and_what_each_boot_needs() {
        for data in ARCHES {
            for variant in data.variants {
                let fragment = data.fragment(variant);
                let wanted = wanted(&fragment);
                for (name, value) in [("CONFIG_RUST", "y"), ("CONFIG_WERROR", "y"), ("CONFIG_SAMPLES_RUST", "y")] {
                    assert!(wanted.contains(&(name, value)), "{} {}: no {name}={value}", data.name, variant.name);
                }
                let module = if variant.boot == Boot::Sample { "y" } else { "m" };
                assert!(wanted.contains(&("CONFIG_SAMPLE_RUST_MINIMAL", module)), "{} {}", data.name, variant.name);
                if let Boot::Ftrace { padded, livepatch } = variant.boot {
                    for name in ["CONFIG_FUNCTION_GRAPH_TRACER", "CONFIG_DYNAMIC_FTRACE_WITH_REGS", "CONFIG_MODULE_UNLOAD", "CONFIG_SAMPLE_RUST_FTRACE_TEST"] {
                        assert!(wanted.contains(&(name, "y")), "{} {}: no {name}", data.name, variant.name);
                    }
                    assert!(data.init_cc.is_some());
                    assert_eq!(padded, variant.expect != "0", "{} {}", data.name, variant.name);
                    assert_eq!(padded, !variant.krustflags.contains("=0"), "{} {}", data.name, variant.name);
                    for name in ["CONFIG_LIVEPATCH", "CONFIG_UNWINDER_ORC", "CONFIG_BUG"] {
                        assert_eq!(wanted.contains(&(name, "y")), livepatch, "{} {}: {name}", data.name, variant.name);
                    }
                    assert_eq!(wanted.contains(&("CONFIG_SAMPLE_LIVEPATCH_RUST_FTRACE", "m")), livepatch);
                }
            }
        }
        let config = "CONFIG_RUST_IS_AVAILABLE=y\n# CONFIG_WERROR is not set\nCONFIG_RUST=y\n";
        assert_eq!(config_value(config, "CONFIG_RUST"), "y");
        assert_eq!(config_value(config, "CONFIG_WERROR"), "n");
        assert_eq!(config_value(config, "CONFIG_SAMPLES"), "n");
        assert_eq!(config_value("CONFIG_RUST_IS_AVAILABLE=y\n", "CONFIG_RUST"), "n");
    }
}
