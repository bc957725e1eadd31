"""The command line: -t checks a configuration and names FILE:LINE of each
error, -p prints a configuration -t accepts, -V names the libraries."""

import re
import subprocess

import pytest

from conftest import CERTGATE, Gateway, line_of


def certgate(*args, timeout=20):
    return subprocess.run([CERTGATE, *args], capture_output=True, timeout=timeout)


@pytest.fixture
def cfg(pki, tmp_path):
    """An unstarted Gateway: only its configuration is used."""
    return Gateway(tmp_path / "cfg", pki, f"unix:{tmp_path}/app.sock")


def write(tmp_path, text, name="test.conf"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def assert_error_at(p, path, line, word):
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, err
    assert f"{path}:{line}:" in err, err
    assert word in err, err
    for l in err.strip().split("\n"):
        assert re.match(rf"^{re.escape(path)}:\d+: \S", l), f"not FILE:LINE: message: {l!r}"


def test_valid_config(cfg, tmp_path):
    path = write(tmp_path, cfg.config_text())
    p = certgate("-t", "-c", path)
    assert p.returncode == 0, p.stderr.decode()


def test_unknown_key(cfg, tmp_path):
    text = cfg.config_text() + "bogus_key = 1;\n"
    path = write(tmp_path, text)
    p = certgate("-t", "-c", path)
    assert_error_at(p, path, line_of(text, "bogus_key"), "bogus_key")


def test_unknown_key_in_group(cfg, tmp_path):
    cfg.config["backends"]["app"]["bogus_backend_key"] = 3
    text = cfg.config_text()
    path = write(tmp_path, text)
    p = certgate("-t", "-c", path)
    assert_error_at(p, path, line_of(text, "bogus_backend_key"), "bogus_backend_key")


def test_wrong_type(cfg, tmp_path):
    cfg.config["limits"] = {"max_body_size": "big"}
    text = cfg.config_text()
    path = write(tmp_path, text)
    p = certgate("-t", "-c", path)
    assert_error_at(p, path, line_of(text, "max_body_size"), "max_body_size")


def test_dangling_backend(cfg, tmp_path):
    cfg.site["locations"].append({"path": "/nope/", "backend": "nope"})
    text = cfg.config_text()
    path = write(tmp_path, text)
    p = certgate("-t", "-c", path)
    assert_error_at(p, path, line_of(text, '"nope"'), "nope")


def test_unreadable_certificate(cfg, tmp_path):
    cfg.site["certificate"] = str(tmp_path / "missing.pem")
    text = cfg.config_text()
    path = write(tmp_path, text)
    p = certgate("-t", "-c", path)
    assert_error_at(p, path, line_of(text, "missing.pem"), "missing.pem")


def test_missing_or_wrong_key(cfg, tmp_path):
    """certgate reads the key itself (to wipe it): a missing file says why,
    a key that is not the certificate's says GnuTLS's reason."""
    cfg.site["key"] = str(tmp_path / "missing.key")
    text = cfg.config_text()
    path = write(tmp_path, text)
    p = certgate("-t", "-c", path)
    assert_error_at(p, path, line_of(text, cfg.site["certificate"]), "No such file or directory")
    cfg.site["key"] = cfg.pki.path("alice.key")
    text = cfg.config_text()
    path = write(tmp_path, text, "wrong.conf")
    p = certgate("-t", "-c", path)
    assert_error_at(p, path, line_of(text, cfg.site["certificate"]), "cannot load certificate")


def test_syntax_error(cfg, tmp_path):
    text = cfg.config_text() + "workers = ;\n"
    path = write(tmp_path, text)
    p = certgate("-t", "-c", path)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert f"{path}:{line_of(text, 'workers = ;')}:" in err, err


def test_several_errors_all_reported(cfg, tmp_path):
    cfg.site["locations"].append({"path": "/nope/", "backend": "nope"})
    text = cfg.config_text() + "bogus_key = 1;\n"
    path = write(tmp_path, text)
    p = certgate("-t", "-c", path)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert f"{path}:{line_of(text, 'bogus_key')}:" in err, err
    assert f"{path}:{line_of(text, chr(34) + 'nope' + chr(34))}:" in err, err


def test_print_config_is_valid(cfg, tmp_path):
    path = write(tmp_path, cfg.config_text())
    p = certgate("-p", "-c", path)
    assert p.returncode == 0, p.stderr.decode()
    printed = p.stdout.decode()
    # Defaults are filled in.
    for key in ("max_body_size", "keepalive_timeout", "shutdown_timeout",
                "session_tickets", "keep_connections"):
        assert key in printed, key
    path2 = write(tmp_path, printed, "printed.conf")
    p = certgate("-t", "-c", path2)
    assert p.returncode == 0, p.stderr.decode() + "\n" + printed
    # Printing the printed configuration gives the same settings.
    p = certgate("-p", "-c", path2)
    assert p.returncode == 0

    def settings(text):
        return [l for l in text.split("\n") if not l.lstrip().startswith("#")]
    assert settings(p.stdout.decode()) == settings(printed)


def test_version():
    p = certgate("-V")
    assert p.returncode == 0, p.stderr.decode()
    out = (p.stdout + p.stderr).decode()
    gnutls = subprocess.run(["pkg-config", "--modversion", "gnutls"],
                            capture_output=True, text=True).stdout.strip()
    libconfig = subprocess.run(["pkg-config", "--modversion", "libconfig"],
                               capture_output=True, text=True).stdout.strip()
    header = open("/usr/share/include/llhttp/llhttp.h").read()
    llhttp = ".".join(re.search(rf"#define LLHTTP_VERSION_{part} (\d+)", header).group(1)
                      for part in ("MAJOR", "MINOR", "PATCH"))
    assert re.search(r"(?i)gnutls", out), out
    assert gnutls and gnutls in out, out
    assert re.search(r"(?i)libconfig", out), out
    assert libconfig and libconfig in out, out
    assert re.search(r"(?i)llhttp", out), out
    assert llhttp in out, out
