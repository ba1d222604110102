"""Reading CPU profiles into stage tables: perf reports and callgrind
annotations grouped into the upload's stages (STAGES), perf samples by
thread kind, and strace counts per MiB. Pure parsing and formatting: the
profiles are taken by bench.py; `bench.py --reprofile DIR` reads saved ones
again through reprofile().
"""

import os
import re
import subprocess


# (stage, regex over "object function") in priority order; first match wins.
STAGES = [
    ("dynamic loader (ld.so)", r"ld-linux|/elf/|_dl_"),
    ("kernel: irq-enable point (VM cpu-clock artifact: time in irq-off kernel code)", r"pvm_irq_enable"),
    ("inflate (zlib / zstd)", r"libz\.so|inflate|adler32|crc32|libzstd|ZSTD_"),
    ("SHA-256 (OpenSSL)", r"sha256|SHA256|sha256_block|libcrypto|EVP_Digest"),
    ("tar walk (libarchive, archive_check)", r"libarchive|archive_read|archive_check|tar_read|archive_entry|"
                                             r"__archive|read_decompressed|read_compressed"),
    ("Asio/Beast HTTP parsing and I/O", r"boost::beast|boost::asio|basic_parser|http_session|listener"),
    ("CAF messaging and scheduling", r"libcaf|caf::"),
    ("fibers (Boost.Context)", r"boost::context|jump_fcontext|ontop_fcontext|make_fcontext"),
    ("memcpy/memmove (user space)", r"memcpy|memmove|__memset|memset"),
    ("locks (pthread mutex, shared_ptr atomics)", r"pthread_mutex|_Sp_counted_base|__lll_lock"),
    ("malloc/free", r"malloc|free|_int_|operator new|operator delete|tcache|cfree"),
    ("socket receive (recvmsg: libc + kernel TCP, copy to user)", r"recvmsg|tcp_|skb|sock_|inet_|__sys_recv|copy_user|_copy_to_user|_copy_to_iter|"
                                                    r"copyout|loopback|net_rx|(?<![a-z])ip_|__netif|napi|rep_movs"),
    ("kernel: file write / page cache / fsync", r"ext4|xfs|btrfs|filemap|generic_perform_write|iomap|"
                                                 r"page_cache|folio|writeback|jbd2|blk_|fsync|copyin|"
                                                 r"_copy_from_user|vfs_write"),
    ("kernel: scheduling, futex, epoll, syscalls", r"futex|schedule|epoll|__schedule|finish_task_switch|"
                                                    r"entry_SYSCALL|syscall|do_syscall|ttwu|try_to_wake_up"),
    ("PostgreSQL client (libpq/libpqxx)", r"libpq|pqxx"),
]



def classify(text):
    for stage, pattern in STAGES:
        if re.search(pattern, text):
            return stage
    if "[k]" in text or "[kernel" in text:
        return "kernel: other"
    return "other"



def group(costs):
    """[(cost, text)] -> [(stage, share, top members)] sorted by share."""
    total = sum(c for c, _ in costs) or 1
    stages = {}
    for cost, text in costs:
        s = stages.setdefault(classify(text), [0, []])
        s[0] += cost
        s[1].append((cost, text))
    out = []
    for stage, (cost, members) in sorted(stages.items(), key=lambda kv: -kv[1][0]):
        members.sort(key=lambda m: -m[0])
        out.append((stage, cost / total, [(c / total, t) for c, t in members[:4]]))
    return out



def format_stages(title, grouped, note=""):
    lines = [title]
    if note:
        lines.append(note)
    lines.append("")
    lines.append("| stage | share | top functions (share) |")
    lines.append("| --- | ---: | --- |")
    for stage, share, members in grouped:
        if share < 0.005:
            continue
        tops = "; ".join(f"`{t.strip()[:80]}` {s * 100:.1f}%" for s, t in members[:3])
        lines.append(f"| {stage} | {share * 100:.1f}% | {tops} |")
    return "\n".join(lines) + "\n"



def perf_stages(data_path, outdir, label):
    r = subprocess.run(
        ["perf", "report", "-i", data_path, "--no-children", "--sort", "dso,sym",
         "--stdio", "-g", "none", "--percent-limit", "0"],
        capture_output=True, text=True, timeout=600)
    with open(os.path.join(outdir, f"perf-report-{label}.txt"), "w") as f:
        f.write(r.stdout)
    costs = []
    for line in r.stdout.splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+(\S+)\s+(\[[.k]\])\s+(.*)$", line)
        if m:
            costs.append((float(m.group(1)), f"{m.group(2)} {m.group(3)} {m.group(4)}"))
    return group(costs)



THREAD_KINDS = {
    "upload-portal": "Asio I/O threads (HTTP sessions: body reads, parsing)",
    "caf.multiplexer": "CAF scheduler workers (upload_session, archive_validator: inflate + tar walk)",
    "caf.actor": "detached CAF actors (storage_writer: write + SHA-256; db_worker)",
    "caf.clock": "CAF clock",
}



def perf_threads(data_path, outdir, label):
    """Shares of the samples by thread name (CAF 0.17 names its scheduler
    workers caf.multiplexer and detached actors caf.actor)."""
    r = subprocess.run(
        ["perf", "report", "-i", data_path, "--no-children", "--sort", "comm,dso",
         "--stdio", "-g", "none", "--percent-limit", "0"],
        capture_output=True, text=True, timeout=600)
    with open(os.path.join(outdir, f"perf-threads-{label}.txt"), "w") as f:
        f.write(r.stdout)
    by_comm = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+(\S+)\s+(\S+)", line)
        if m:
            comm = THREAD_KINDS.get(m.group(2), m.group(2))
            entry = by_comm.setdefault(comm, [0.0, {}])
            entry[0] += float(m.group(1))
            entry[1][m.group(3)] = entry[1].get(m.group(3), 0.0) + float(m.group(1))
    lines = ["| threads | share | by object |", "| --- | ---: | --- |"]
    for comm, (share, dsos) in sorted(by_comm.items(), key=lambda kv: -kv[1][0]):
        if share < 0.5:
            continue
        parts = ", ".join(f"{d} {v:.1f}%" for d, v in sorted(dsos.items(), key=lambda kv: -kv[1]) if v >= 0.5)
        lines.append(f"| {comm} | {share:.1f}% | {parts} |")
    return "\n".join(lines) + "\n"



def callgrind_stages(out_file, outdir):
    r = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", out_file],
        capture_output=True, text=True, timeout=600)
    with open(os.path.join(outdir, "callgrind-annotate.txt"), "w") as f:
        f.write(r.stdout)
    costs = []
    for line in r.stdout.splitlines():
        # "1,234,567 (12.34%)  file:function [object]" (older: no percentage)
        m = re.match(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*?)$", line)
        if m and ("[" in m.group(2) or ":" in m.group(2)) and "PROGRAM TOTALS" not in line:
            costs.append((int(m.group(1).replace(",", "")), m.group(2)))
    return group(costs)



def format_syscalls(sc):
    lines = [f"system calls during {sc['label']} (strace -f -c; {sc['uploaded_bytes']} body bytes):", "",
             "| syscall | calls | per MiB uploaded |", "| --- | ---: | ---: |"]
    for name, count in sorted(sc["calls"].items(), key=lambda kv: -kv[1])[:9]:
        if name == "total":
            continue
        lines.append(f"| {name} | {count} | {sc['calls_per_mib'].get(name)} |")
    lines.append("")
    lines.append(f"| all | {sc['calls'].get('total')} | {sc['calls_per_mib'].get('total')} |")
    lines.append("")
    lines.append(f"body bytes per recvmsg: {sc['body_bytes_per_recvmsg']}; "
                 f"per file write: {sc['body_bytes_per_write']}")
    return "\n".join(lines) + "\n"



def reprofile(outdir):
    """Stage tables again from a results directory's saved profiles."""
    for name in sorted(os.listdir(outdir)):
        path = os.path.join(outdir, name)
        if name == "callgrind.out":
            print(format_stages(f"profile (callgrind, {outdir}):", callgrind_stages(path, outdir)))
        elif name.startswith("perf") and name.endswith(".data"):
            print(format_stages(f"profile ({name}, {outdir}):", perf_stages(path, outdir, name[:-5])))
            print(perf_threads(path, outdir, name[:-5]))
    return 0
