"""/proc/cpuinfo as the Raspberry Pi boards' kernels print it, for QEMU user-mode runs.

QEMU 7.2 (Debian 12) passes the host's x86 /proc/cpuinfo through to an aarch64 guest, and
onnxruntime's cpuinfo parser then crashes on import (SIGSEGV). The values below are the ones a
Pi 4 (Cortex-A72, BCM2711) and a Pi 5 (Cortex-A76, BCM2712) report under Raspberry Pi OS bookworm.
"""

from __future__ import annotations

CPU_MODELS: dict[str, dict[str, str]] = {
    "cortex-a72": {  # Raspberry Pi 4 Model B
        "features": "fp asimd evtstrm crc32 cpuid",
        "variant": "0x0", "part": "0xd08", "revision": "3", "bogomips": "108.00",
        "revision_code": "c03114", "model": "Raspberry Pi 4 Model B Rev 1.4",
    },
    "cortex-a76": {  # Raspberry Pi 5 Model B
        "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
        "variant": "0x4", "part": "0xd0b", "revision": "1", "bogomips": "108.00",
        "revision_code": "d04170", "model": "Raspberry Pi 5 Model B Rev 1.0",
    },
}


def cpuinfo_text(cpu: str, cores: int = 4) -> str:
    spec = CPU_MODELS[cpu]
    blocks = []
    for index in range(cores):
        blocks.append("\n".join([
            f"processor\t: {index}",
            f"BogoMIPS\t: {spec['bogomips']}",
            f"Features\t: {spec['features']}",
            "CPU implementer\t: 0x41",
            "CPU architecture: 8",
            f"CPU variant\t: {spec['variant']}",
            f"CPU part\t: {spec['part']}",
            f"CPU revision\t: {spec['revision']}",
        ]))
    tail = "\n".join([f"Revision\t: {spec['revision_code']}", "Serial\t\t: 0000000000000000",
                      f"Model\t\t: {spec['model']}"])
    return "\n\n".join(blocks) + "\n\n" + tail + "\n"
