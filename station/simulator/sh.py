"""A tiny POSIX shell for the simulated unit: the command forms the rig sends, run on the unit's memory
file system.

Grammar: lists joined by ``;``, ``&&`` and ``||``; pipelines with ``|``; redirections ``<``, ``>``, ``>>``,
``2>``, ``2>>`` and ``2>&1``; single and double quotes, backslashes, ``$?`` and ``$NAME``; ``*`` and ``?``
in the last part of a path. Commands: echo, cat, base64 [-d], sha256sum, cksum, mv, rm, mkdir, sync, true,
false, chmod (octal modes), stat -c (``%a``, ``%n``), umask, test (``-e``, ``-f``, ``-d``), openssl (``openssl.py``), plus those the
unit adds (stty, reboot, its agent's restart command). A line that ends inside a quote
raises ``Incomplete``, and the unit shows the continuation prompt, as a real shell does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..rig.checksum import cksum
from .fs import FsError, MemoryFS
from .openssl import OpenSSL

Result = tuple[bytes, bytes, int]  # stdout, stderr, exit status
Command = Callable[[list[str], bytes], Result]

OPERATORS = ("2>&1", "2>>", "&&", "||", ">>", "2>", ";", "|", ">", "<", "&")
REDIRECTS = ("<", ">", ">>", "2>", "2>>", "2>&1")


class Incomplete(Exception):
    """The line ends inside a quote or after a backslash: the shell needs another line."""


class Halt(Exception):
    """Raised by a command that ends the shell (a reboot): the rest of the line never runs."""


class SyntaxFault(Exception):
    """A line the shell cannot parse."""


@dataclass
class Word:
    """A word as parts of kind ``plain``, ``quoted`` (never globbed) or ``var`` (a name, expanded when run)."""

    parts: list[tuple[str, str]] = field(default_factory=list)

    def text(self, env: dict[str, str]) -> str:
        return "".join(env.get(text, "") if kind == "var" else text for kind, text in self.parts)

    @property
    def globbed(self) -> bool:
        return any(kind == "plain" and any(c in text for c in "*?[") for kind, text in self.parts)


def _dollar(line: str, i: int) -> tuple[tuple[str, str], int]:
    """The part for the ``$`` at ``line[i]``, and the index after its name."""
    nxt = line[i + 1 : i + 2]
    if nxt in ("?", "$"):
        return ("var", nxt), i + 2
    j = i + 1
    while j < len(line) and (line[j].isalnum() or line[j] == "_"):
        j += 1
    return (("var", line[i + 1 : j]), j) if j > i + 1 else (("quoted", "$"), i + 1)


def tokenize(line: str) -> list[Word | str]:
    """Words and operators (operators are plain strings)."""
    tokens: list[Word | str] = []
    word: Word | None = None
    i = 0
    while i < len(line):
        c = line[i]
        if c in " \t":
            _end(tokens, word)
            word, i = None, i + 1
            continue
        if c == "#" and word is None:
            break
        op = next((o for o in OPERATORS if line.startswith(o, i) and (o[0] != "2" or word is None)), None)
        if op:
            _end(tokens, word)
            word = None
            tokens.append(op)
            i += len(op)
            continue
        word = word or Word()
        if c == "'":
            j = line.find("'", i + 1)
            if j < 0:
                raise Incomplete
            word.parts.append(("quoted", line[i + 1 : j]))
            i = j + 1
        elif c == '"':
            i = _double(line, i + 1, word)
        elif c in "\\$":
            i = _special(line, i, word)
        else:
            word.parts.append(("plain", c))
            i += 1
    _end(tokens, word)
    return tokens


def _special(line: str, i: int, word: Word) -> int:
    """Add the part for the backslash or ``$`` at ``line[i]`` to ``word``; the index after it."""
    if line[i] == "$":
        part, i = _dollar(line, i)
        word.parts.append(part)
        return i
    if i + 1 >= len(line):
        raise Incomplete
    word.parts.append(("quoted", line[i + 1]))
    return i + 2


def _end(tokens: list[Word | str], word: Word | None) -> None:
    """The word being read, if any, ends and joins the tokens."""
    if word is not None:
        tokens.append(word)


def _double(line: str, i: int, word: Word) -> int:
    """Add the parts of a double-quoted string starting at ``line[i]`` to ``word``; the index after it."""
    while i < len(line):
        c = line[i]
        if c == '"':
            word.parts.append(("quoted", ""))  # "" is a word of its own even when empty
            return i + 1
        if c == "$" or (c == "\\" and line[i + 1 : i + 2] in ('"', "\\", "$", "`")):
            i = _special(line, i, word)
        else:
            word.parts.append(("quoted", c))
            i += 1
    raise Incomplete


@dataclass
class Simple:
    words: list[Word] = field(default_factory=list)
    redirects: list[tuple[str, Word | None]] = field(default_factory=list)


def parse(tokens: list[Word | str]) -> list[tuple[str, list[Simple]]]:
    """Pipelines, each with the operator that joins it to the one before (``;`` for the first of a list)."""
    out: list[tuple[str, list[Simple]]] = []
    joiner, pipeline, command = ";", [], Simple()
    tokens = list(tokens)
    while tokens:
        token = tokens.pop(0)
        if isinstance(token, Word):
            command.words.append(token)
        elif token in REDIRECTS:
            target: Word | None = None
            if token != "2>&1":
                following = tokens.pop(0) if tokens else None
                if not isinstance(following, Word):
                    raise SyntaxFault(f"unexpected {following if following is not None else 'newline'}")
                target = following
            command.redirects.append((token, target))
        else:
            if not command.words and not command.redirects:
                raise SyntaxFault(f"unexpected {token!r}")
            pipeline.append(command)
            command = Simple()
            if token != "|":
                out.append((joiner, pipeline))
                joiner, pipeline = token, []
    if command.words or command.redirects:
        pipeline.append(command)
    elif pipeline:
        raise SyntaxFault("unexpected end of line")
    if pipeline:
        out.append((joiner, pipeline))
    return out


class Shell:
    """Runs command lines; ``console`` receives what would appear on the terminal."""

    def __init__(self, fs: MemoryFS, console: Callable[[bytes], None], extra: dict[str, Command] | None = None,
                 readback_hook: Callable[[bytes], bytes] | None = None) -> None:
        self.fs = fs
        self.console = console
        self.env = {"?": "0", "$": "421", "HOME": "/root"}
        self.readback_hook = readback_hook or (lambda out: out)
        self.commands: dict[str, Command] = {
            "echo": self._echo, "cat": self._cat, "base64": self._base64, "sha256sum": self._sha256sum,
            "cksum": self._cksum, "mv": self._mv, "rm": self._rm, "mkdir": self._mkdir,
            "sync": lambda a, i: (b"", b"", 0), "true": lambda a, i: (b"", b"", 0),
            "false": lambda a, i: (b"", b"", 1), "chmod": self._chmod, "stat": self._stat, "umask": self._umask,
            "test": self._test,
            "openssl": OpenSSL(fs), **(extra or {}),
        }

    @property
    def status(self) -> int:
        return int(self.env["?"])

    def execute(self, line: str) -> None:
        """Run one command line; raises ``Incomplete`` when it needs another line."""
        try:
            lists = parse(tokenize(line))
        except SyntaxFault as exc:
            self.console(f"sh: syntax error: {exc}\n".encode())
            self.env["?"] = "2"
            return
        for joiner, pipeline in lists:
            if (joiner == "&&" and self.status != 0) or (joiner == "||" and self.status == 0):
                continue
            try:
                self.env["?"] = str(self._pipeline(pipeline))
            except Halt:
                return

    def _expand(self, words: list[Word]) -> list[str]:
        argv = []
        for word in words:
            text = word.text(self.env)
            matches = self.fs.glob(text) if word.globbed else []
            argv.extend(matches or [text])
        return argv

    def _pipeline(self, pipeline: list[Simple]) -> int:
        data, status = b"", 0
        for index, command in enumerate(pipeline):
            out, err, status = self._simple(command, data)
            self.console(err)
            if index == len(pipeline) - 1:
                self.console(out)
            data = out
        return status

    def _simple(self, command: Simple, stdin: bytes) -> Result:
        argv = self._expand(command.words)
        outputs: list[tuple[str, str]] = []
        for op, target in command.redirects:
            name = self._expand([target])[0] if target else ""
            if op == "<":
                try:
                    stdin = self.fs.read(name)
                except FsError as exc:
                    return b"", f"sh: can't open '{name}': {exc}\n".encode(), 1
            elif op in (">", ">>", "2>", "2>>"):
                try:
                    self.fs.write(name, b"", append=op.endswith(">>"))  # opened (and truncated) before the command runs
                except FsError as exc:
                    return b"", f"sh: can't create {name}: {exc}\n".encode(), 1
                outputs.append((op, name))
            else:
                outputs.append((op, name))
        if not argv:
            return b"", b"", 0
        run = self.commands.get(argv[0])
        if run is None:
            out, err, status = b"", f"sh: {argv[0]}: not found\n".encode(), 127
        else:
            out, err, status = run(argv[1:], stdin)
        for op, name in outputs:
            try:
                if op == "2>&1":
                    out, err = out + err, b""
                elif op.startswith("2"):
                    self.fs.write(name, err, append=True)
                    err = b""
                else:
                    self.fs.write(name, out, append=True)
                    out = b""
            except FsError as exc:
                out, err, status = b"", err + f"{argv[0]}: write error: {exc}\n".encode(), 1
        return out, err, status

    # --- commands -----------------------------------------------------------------------------------------

    def _inputs(self, name: str, args: list[str], stdin: bytes) -> tuple[list[tuple[str, bytes]], bytes, int]:
        """The files a command reads (stdin when none is named), the errors, and the status so far."""
        files, errors, status = [], b"", 0
        for arg in args or ["-"]:
            if arg == "-":
                files.append(("-", stdin))
                continue
            try:
                files.append((arg, self.fs.read(arg)))
            except FsError as exc:
                errors += f"{name}: {arg}: {exc}\n".encode()
                status = 1
        return files, errors, status

    def _echo(self, args: list[str], stdin: bytes) -> Result:
        newline = not (args and args[0] == "-n")
        return (" ".join(args[0 if newline else 1 :]) + ("\n" if newline else "")).encode(), b"", 0

    def _cat(self, args: list[str], stdin: bytes) -> Result:
        files, errors, status = self._inputs("cat", args, stdin)
        return b"".join(data for _, data in files), errors, status

    def _base64(self, args: list[str], stdin: bytes) -> Result:
        """``base64 [-d] [FILE]``: standard input, or the file as coreutils and busybox read it."""
        decode = bool(args) and args[0] in ("-d", "--decode")
        files, errors, status = self._inputs("base64", args[1:] if decode else args, stdin)
        if status:
            return b"", errors, status
        data = b"".join(content for _, content in files)
        if decode:
            try:
                return base64.b64decode(b"".join(data.split()), validate=True), b"", 0
            except (binascii.Error, ValueError):
                return b"", b"base64: invalid input\n", 1
        encoded = base64.b64encode(data)
        return b"".join(encoded[i : i + 76] + b"\n" for i in range(0, len(encoded), 76)), b"", 0

    def _sha256sum(self, args: list[str], stdin: bytes) -> Result:
        files, errors, status = self._inputs("sha256sum", args, stdin)
        out = b"".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode() for name, data in files)
        return self.readback_hook(out), errors, status

    def _cksum(self, args: list[str], stdin: bytes) -> Result:
        files, errors, status = self._inputs("cksum", args, stdin)
        out = b"".join(f"{cksum(data)} {len(data)}{'' if name == '-' else ' ' + name}\n".encode() for name, data in files)
        return out, errors, status

    def _mv(self, args: list[str], stdin: bytes) -> Result:
        paths = [a for a in args if not a.startswith("-")]
        if len(paths) != 2:
            return b"", b"mv: need a source and a target\n", 1
        try:
            self.fs.rename(*paths)
        except FsError as exc:
            return b"", f"mv: cannot move '{paths[0]}': {exc}\n".encode(), 1
        return b"", b"", 0

    def _rm(self, args: list[str], stdin: bytes) -> Result:
        flags = "".join(a[1:] for a in args if a.startswith("-"))
        errors, status = b"", 0
        for path in (a for a in args if not a.startswith("-")):
            try:
                self.fs.remove(path, recursive="r" in flags)
            except FsError as exc:
                if not ("f" in flags and "No such" in str(exc)):
                    errors += f"rm: cannot remove '{path}': {exc}\n".encode()
                    status = 1
        return b"", errors, status

    def _mkdir(self, args: list[str], stdin: bytes) -> Result:
        errors, status = b"", 0
        for path in (a for a in args if not a.startswith("-")):
            try:
                self.fs.mkdir(path, parents="-p" in args)
            except FsError as exc:
                errors += f"mkdir: cannot create directory '{path}': {exc}\n".encode()
                status = 1
        return b"", errors, status

    def _chmod(self, args: list[str], stdin: bytes) -> Result:
        if len(args) < 2:
            return b"", b"chmod: missing operand\n", 1
        try:
            mode = int(args[0], 8)
        except ValueError:
            return b"", f"chmod: invalid mode: '{args[0]}' (the simulator takes octal modes)\n".encode(), 1
        errors, status = b"", 0
        for path in args[1:]:
            try:
                self.fs.chmod(path, mode)
            except FsError as exc:
                errors += f"chmod: cannot access '{path}': {exc}\n".encode()
                status = 1
        return b"", errors, status

    def _stat(self, args: list[str], stdin: bytes) -> Result:
        if len(args) < 3 or args[0] != "-c":
            return b"", b"stat: the simulator takes only stat -c FORMAT FILE...\n", 1
        out, errors, status = b"", b"", 0
        for path in args[2:]:
            try:
                fields = {"%a": f"{self.fs.mode(path):o}", "%n": path}
            except FsError as exc:
                errors += f"stat: cannot statx '{path}': {exc}\n".encode()
                status = 1
                continue
            text = args[1]
            for name, value in fields.items():
                text = text.replace(name, value)
            out += (text + "\n").encode()
        return out, errors, status

    def _test(self, args: list[str], stdin: bytes) -> Result:
        """``test -e|-f|-d PATH``: status 0 when true, 1 when false, 2 for a form the simulator does not take."""
        if len(args) != 2 or args[0] not in ("-e", "-f", "-d"):
            return b"", b"sh: test: the simulator takes only test -e, -f or -d PATH\n", 2
        path = self.fs.path(args[1])
        with self.fs.lock:
            found = {"-e": path in self.fs.files or path in self.fs.folders, "-f": path in self.fs.files,
                     "-d": path in self.fs.folders}[args[0]]
        return b"", b"", 0 if found else 1

    def _umask(self, args: list[str], stdin: bytes) -> Result:
        if not args:
            return f"{self.fs.umask:04o}\n".encode(), b"", 0
        try:
            self.fs.umask = int(args[0], 8) & 0o777
        except ValueError:
            return b"", f"sh: umask: Illegal mode: {args[0]}\n".encode(), 2
        return b"", b"", 0
