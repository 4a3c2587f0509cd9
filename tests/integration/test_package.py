#!/usr/bin/python3
"""Debian packages and install layout.

Run as:
    /usr/bin/python3 tests/integration/test_package.py --build-dir BUILD --version X.Y.Z \
        [--cpack /usr/bin/cpack] [--cmake /usr/bin/cmake] [--with-tools]

Builds the .debs with `cpack -G DEB` from the build tree (into a scratch directory), then checks
with dpkg-deb: file names, layout, conffiles, maintainer scripts, computed Depends; extracts the
server package with `dpkg -x` into a scratch root, runs the extracted binaries, and has
`systemd-analyze verify --root` accept the installed unit there, so its ExecStart must name the
packaged /usr/bin/ringcast. Also checks `cmake --install` (DESTDIR) on other prefixes: the unit
names the binary of that prefix.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD_DIR = None
VERSION = None
CPACK = "cpack"
CMAKE = "cmake"
WITH_TOOLS = False

ARCH = None
SERVER_FILES = {
    "./usr/bin/ringcast",
    "./lib/systemd/system/ringcast.service",
    "./etc/ringcast/ringcast.toml",
}
EXEC_START = "ExecStart=/usr/bin/ringcast --config /etc/ringcast/ringcast.toml"


def run(cmd, timeout=120, **kw):
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout, **kw)
    if r.returncode != 0:
        raise AssertionError("%s failed (rc=%d):\n%s%s" % (" ".join(cmd), r.returncode,
                                                           r.stdout, r.stderr))
    return r.stdout


def deb_files(deb):
    """Paths in the data archive ("./usr/bin/x"), directories without their trailing slash."""
    out = run(["dpkg-deb", "-c", deb])
    paths = {}
    for line in out.splitlines():
        # drwxr-xr-x root/root 0 2024-01-01 00:00 ./usr/
        parts = line.split(None, 5)
        name = parts[5].split(" -> ")[0].rstrip("/")
        paths[name] = (parts[0], parts[1])
    return paths


def field(deb, name):
    return run(["dpkg-deb", "-f", deb, name]).strip()


def depends_names(value):
    """Package names in a Depends value ("libc6 (>= 2.34), a | b" -> {"libc6", "a", "b"})."""
    names = set()
    for alt in re.split(r"[,|]", value):
        alt = alt.strip()
        if alt:
            names.add(re.split(r"[\s(:]", alt)[0])
    return names


class Packages:
    """cpack runs once for the whole file; every test reads its output."""
    tmp = None
    debs = {}
    cpack_output = ""


def setUpModule():
    global ARCH
    ARCH = run(["dpkg", "--print-architecture"]).strip()
    Packages.tmp = tempfile.mkdtemp(prefix="rc-package-")
    out = os.path.join(Packages.tmp, "out")
    # -B: packages and cpack's staging tree go to the scratch directory, not the build tree.
    # cpack runs the tree's `preinstall` target first, so stale binaries are never packaged.
    Packages.cpack_output = run([CPACK, "-G", "DEB", "--config",
                                 os.path.join(BUILD_DIR, "CPackConfig.cmake"), "-B", out],
                                timeout=600, cwd=BUILD_DIR)
    for name in os.listdir(out):
        if name.endswith(".deb"):
            Packages.debs[name] = os.path.join(out, name)


def tearDownModule():
    if Packages.tmp:
        shutil.rmtree(Packages.tmp, True)


def server_deb_name():
    return "ringcast_%s_%s.deb" % (VERSION, ARCH)


def tools_deb_name():
    return "ringcast-tools_%s_%s.deb" % (VERSION, ARCH)


class PackageFilesTest(unittest.TestCase):
    def test_debian_file_names(self):
        expected = {server_deb_name()}
        if WITH_TOOLS:
            expected.add(tools_deb_name())
        self.assertEqual(set(Packages.debs), expected,
                         "cpack output:\n" + Packages.cpack_output)

    def test_server_layout(self):
        deb = Packages.debs[server_deb_name()]
        files = deb_files(deb)
        for f in SERVER_FILES:
            self.assertIn(f, files, "missing from %s" % deb)
        self.assertTrue(files["./usr/bin/ringcast"][0].startswith("-rwxr-xr-x"),
                        files["./usr/bin/ringcast"])
        self.assertEqual(files["./etc/ringcast/ringcast.toml"][1], "root/root")
        regular = {f for f, (mode, _) in files.items() if mode.startswith("-")}
        self.assertEqual(regular, SERVER_FILES, "unexpected files in the server package")
        self.assertFalse([f for f in files if f.startswith("./usr/local")], files)

    def test_server_control(self):
        deb = Packages.debs[server_deb_name()]
        self.assertEqual(field(deb, "Package"), "ringcast")
        self.assertEqual(field(deb, "Version"), VERSION)
        self.assertEqual(field(deb, "Architecture"), ARCH)
        self.assertTrue(field(deb, "Maintainer"))
        self.assertTrue(field(deb, "Description"))
        # Computed by dpkg-shlibdeps from the binary, plus what the maintainer scripts use.
        depends = depends_names(field(deb, "Depends"))
        for lib in ("libc6", "liburing2", "libsqlite3-0", "libssl3", "libwslay1", "adduser"):
            self.assertIn(lib, depends)
        self.assertIn("init-system-helpers", depends_names(field(deb, "Pre-Depends")))

    def test_server_conffiles_and_scripts(self):
        deb = Packages.debs[server_deb_name()]
        ctl = os.path.join(Packages.tmp, "control")
        run(["dpkg-deb", "-e", deb, ctl])
        with open(os.path.join(ctl, "conffiles"), encoding="utf-8") as f:
            self.assertEqual(f.read().split(), ["/etc/ringcast/ringcast.toml"])
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(ctl, script)
            self.assertTrue(os.access(path, os.X_OK), "%s is not executable" % script)
            run(["sh", "-n", path])
        with open(os.path.join(ctl, "postinst"), encoding="utf-8") as f:
            postinst = f.read()
        # The account the unit's DynamicUser= picks up, and the unit enabled and started.
        self.assertIn("adduser", postinst)
        self.assertIn("deb-systemd-helper enable 'ringcast.service'", postinst)
        self.assertIn("deb-systemd-invoke", postinst)

    def test_tools_package(self):
        if not WITH_TOOLS:
            self.skipTest("ringcast-load is not built in this tree")
        deb = Packages.debs[tools_deb_name()]
        self.assertEqual(field(deb, "Package"), "ringcast-tools")
        regular = {f for f, (mode, _) in deb_files(deb).items() if mode.startswith("-")}
        self.assertEqual(regular, {"./usr/bin/ringcast-load"})
        self.assertIn("libc6", depends_names(field(deb, "Depends")))
        root = os.path.join(Packages.tmp, "tools-root")
        run(["dpkg", "-x", deb, root])
        out = subprocess.run([os.path.join(root, "usr/bin/ringcast-load"), "--help"],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        self.assertIn("usage: ringcast-load", out.stdout + out.stderr)


class ExtractedServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(Packages.tmp, "root")
        run(["dpkg", "-x", Packages.debs[server_deb_name()], cls.root])

    def test_binary_runs(self):
        out = run([os.path.join(self.root, "usr/bin/ringcast"), "--version"], timeout=30)
        self.assertIn(VERSION, out)

    def test_packaged_config_is_valid(self):
        # The conffile is what the service starts with: the packaged binary must accept it.
        run([os.path.join(self.root, "usr/bin/ringcast"), "--check-config", "--config",
             os.path.join(self.root, "etc/ringcast/ringcast.toml")], timeout=30, cwd=Packages.tmp)

    def test_unit_points_at_packaged_binary(self):
        with open(os.path.join(self.root, "lib/systemd/system/ringcast.service"),
                  encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertEqual([l for l in lines if l.startswith("ExecStart=")], [EXEC_START])
        self.assertFalse([l for l in lines if "@" in l and not l.startswith("#")],
                         "unsubstituted template variable")

    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze not found")
        # verify --root resolves ExecStart and the unit's dependencies inside the root: add the
        # host's stock units (sysinit.target, network-online.target, ...) and /bin/kill
        # (ExecReload) next to what the package installed, under /usr/lib, not the package's /lib.
        root = os.path.join(Packages.tmp, "verify-root")
        shutil.copytree(self.root, root, symlinks=True)
        host_units = "/usr/lib/systemd/system"
        if not os.path.isdir(host_units):
            host_units = "/lib/systemd/system"
        shutil.copytree(host_units, os.path.join(root, "usr/lib/systemd/system"), symlinks=True,
                        ignore=shutil.ignore_patterns("ringcast*"))
        os.makedirs(os.path.join(root, "bin"), exist_ok=True)
        shutil.copy2(shutil.which("kill") or "/bin/kill", os.path.join(root, "bin/kill"))
        env = dict(os.environ, SYSTEMD_PAGER="", SYSTEMD_LOG_COLOR="0")
        r = subprocess.run([analyze, "verify", "--root=" + root, "ringcast.service"], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        output = (r.stdout + r.stderr).strip()
        self.assertEqual(r.returncode, 0, "systemd-analyze verify failed:\n" + output)
        self.assertFalse([l for l in output.splitlines() if "ringcast" in l], output)


class CMakeInstallTest(unittest.TestCase):
    """`cmake --install` (what `make install` does) with DESTDIR, on prefixes other than /usr."""

    def install(self, prefix):
        dest = tempfile.mkdtemp(prefix="rc-install-", dir=Packages.tmp)
        run([CMAKE, "--install", BUILD_DIR, "--prefix", prefix, "--component", "server"],
            env=dict(os.environ, DESTDIR=dest))
        return dest

    def check_prefix(self, prefix):
        dest = self.install(prefix)
        unit = os.path.join(dest + prefix, "lib/systemd/system/ringcast.service")
        with open(unit, encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertEqual(
            [l for l in lines if l.startswith("ExecStart=")],
            ["ExecStart=%s/bin/ringcast --config /etc/ringcast/ringcast.toml" % prefix])
        self.assertTrue(os.access(os.path.join(dest + prefix, "bin/ringcast"), os.X_OK))
        # The example config under the prefix; the service reads the operator's copy in /etc.
        self.assertTrue(os.path.isfile(os.path.join(dest + prefix, "etc/ringcast/ringcast.toml")))
        self.assertFalse(os.path.exists(os.path.join(dest, "etc")))

    def test_usr_local(self):
        self.check_prefix("/usr/local")

    def test_opt(self):
        self.check_prefix("/opt/ringcast")


def main():
    global BUILD_DIR, VERSION, CPACK, CMAKE, WITH_TOOLS
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--cpack", default="cpack")
    parser.add_argument("--cmake", default="cmake")
    parser.add_argument("--with-tools", action="store_true")
    opts, rest = parser.parse_known_args()
    BUILD_DIR = os.path.abspath(opts.build_dir)
    VERSION = opts.version
    CPACK = opts.cpack
    CMAKE = opts.cmake
    WITH_TOOLS = opts.with_tools
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
