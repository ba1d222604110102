"""One benchmark scenario, parsed from its name (bench/bench.py
--scenarios, bench/targets.py): how many uploads, of which archive, by which
protocol, to which server. Checked when parsed, before anything starts.
"""

import make_archive


class Scenario:
    """"NxSIZE[@PEER][+tus[=PATCH]][+cwu][+sync=BYTES][+rounds=R][+zst][+isal][+idle=S][+warmup][+again][+b]":
    N concurrent uploads of a SIZE archive, by plain PUT, or by tus with one
    PATCH (+tus) or PATCH-byte PATCHes (+tus=8M); +cwu sends the first
    PATCH's bytes in the creation POST (creation-with-upload); +sync sets the
    server's PORTAL_TUS_SYNC_BYTES; +rounds=R has each of the N clients
    upload R times in a row (a steady state for small uploads); +zst uploads
    a .tar.zst of the same content instead of the .tar.gz; +isal runs the
    server with PORTAL_GZIP_INFLATER=isal (ISA-L inflates); +idle=S watches
    the server's RSS for up to S seconds after the load (memory after a
    burst); +warmup changes nothing but the label: a run's first large
    scenario costs up to a fifth more server CPU than the same load later
    (bench/RESULTS.md, run 11: most likely the VM faulting in page-cache
    memory it had handed back), so --targets first runs one that no target
    reads; +again changes nothing but the label either: the second half of
    a comparison run twice in ABBA order (PUT, tus, tus again, PUT again),
    so a drift of the machine between the two sides cancels out; +b runs
    the server from bench.py's --binary-b instead of --binary (two builds
    compared in one run, their scenarios alternated).
    @nginx or @tus-node sends the same load to a store-only peer
    (bench/peers.py): a WebDAV PUT to nginx, or tus to @tus/server."""

    def __init__(self, text):
        head, *options = text.split("+")
        head, at_sign, self.target = head.partition("@")
        self.target = self.target or ("" if at_sign else "portal")
        if self.target not in ("portal", "nginx", "tus-node"):
            raise ValueError(f"scenario {text!r}: unknown target {self.target!r}")
        n, _, size = head.partition("x")
        self.n, self.size = int(n), make_archive.parse_size(size)
        self.tus, self.patch_bytes, self.env = self.target == "tus-node", 0, {}
        self.creation_with_upload = False
        self.rounds = 1
        self.fmt = "gz"
        self.idle_seconds = 0
        self.binary_b = False
        for option in options:
            key, _, value = option.partition("=")
            if key == "tus":
                self.tus = True
                self.patch_bytes = make_archive.parse_size(value) if value else 0
            elif key == "cwu":
                self.creation_with_upload = True
            elif key == "rounds":
                self.rounds = int(value)
            elif key == "sync":
                self.env["PORTAL_TUS_SYNC_BYTES"] = str(make_archive.parse_size(value))
            elif key == "zst":
                self.fmt = "zst"
            elif key == "isal":
                self.env["PORTAL_GZIP_INFLATER"] = "isal"
            elif key == "idle":
                self.idle_seconds = int(value)
            elif key == "b":
                self.binary_b = True
            elif key in ("warmup", "again"):
                pass  # only the label differs
            else:
                raise ValueError(f"scenario {text!r}: unknown option {option!r}")
        if self.n < 1 or self.rounds < 1 or self.size < 1:
            raise ValueError(f"scenario {text!r}: N, SIZE and rounds must be at least 1")
        if self.target == "nginx" and self.tus:
            raise ValueError(f"scenario {text!r}: nginx takes plain PUTs only")
        if self.target != "portal" and (self.env or self.idle_seconds or self.binary_b):
            raise ValueError(f"scenario {text!r}: +sync, +isal, +idle and +b are the portal's")
        at = "" if self.target == "portal" else "@" + self.target
        self.label = "+".join([f"{self.n}x{make_archive.size_label(self.size)}{at}"] + options)

    def archive(self):
        return make_archive.ensure(self.size, fmt=self.fmt)

    def loadgen_args(self):
        args = ["--rounds", str(self.rounds)] if self.rounds > 1 else []
        if self.target != "portal":
            args += ["--target", self.target]
        if not self.tus:
            return args
        return (args + ["--tus", "--patch-bytes", str(self.patch_bytes)]
                + (["--creation-with-upload"] if self.creation_with_upload else []))
