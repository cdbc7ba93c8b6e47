#!/usr/bin/env python3
"""Provisioning for bench/registrar.sh: the benchmark's users, for SIPp and for both registrars.

  provision_users.py csv COUNT FILE              SIPp injection file: "SEQUENTIAL", then
                                                 "username;[authentication username=U password=P]"
                                                 per user (SIPp 3.6 expands a keyword held in a
                                                 field, not a field inside a keyword)
  provision_users.py kamailio COUNT DB REALM     Kamailio's auth_db `subscriber` table in a new
                                                 SQLite file (ha1 = MD5(user:realm:password))
  provision_users.py pinhole-db COUNT DB REALM   the users straight into the `users` table of
                                                 pinhole's SQLite store DB (created by pinhole,
                                                 which must not be running): ha1_md5, ha1_sha256
  provision_users.py pinhole COUNT HOST:PORT REALM [CONNECTIONS]
                                                 POST /users to pinhole's admin API, over
                                                 CONNECTIONS (default 4) keep-alive connections

The users are u000001... with a password derived from the index, the same in all three. Not
measured by the benchmark; exits 1 with a message when anything fails.
"""

import hashlib
import http.client
import json
import os
import sqlite3
import sys
import threading


def user(i):
    return f"u{i:06d}"


def password(i):
    # distinct per user, so a registrar that mixed users up would fail the digest
    return hashlib.sha256(f"bench-{i}".encode()).hexdigest()[:16]


def write_csv(count, path):
    with open(path, "w", encoding="ascii") as f:
        f.write("SEQUENTIAL\n")
        for i in range(1, count + 1):
            f.write(f"{user(i)};[authentication username={user(i)} password={password(i)}]\n")


def write_kamailio_db(count, path, realm):
    if os.path.exists(path):
        os.unlink(path)
    db = sqlite3.connect(path)
    # the schema of Debian's /usr/share/kamailio/db_sqlite/{standard,auth_db}-create.sql
    db.executescript(
        """
        CREATE TABLE version (id INTEGER PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL,
            table_version INTEGER DEFAULT 0 NOT NULL,
            CONSTRAINT version_table_name_idx UNIQUE (table_name));
        INSERT INTO version (table_name, table_version) VALUES ('version', '1');
        CREATE TABLE subscriber (id INTEGER PRIMARY KEY NOT NULL,
            username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL,
            password VARCHAR(64) DEFAULT '' NOT NULL, ha1 VARCHAR(128) DEFAULT '' NOT NULL,
            ha1b VARCHAR(128) DEFAULT '' NOT NULL,
            CONSTRAINT subscriber_account_idx UNIQUE (username, domain));
        CREATE INDEX subscriber_username_idx ON subscriber (username);
        INSERT INTO version (table_name, table_version) VALUES ('subscriber', '7');
        """
    )
    rows = []
    for i in range(1, count + 1):
        u = user(i)
        ha1 = hashlib.md5(f"{u}:{realm}:{password(i)}".encode()).hexdigest()
        ha1b = hashlib.md5(f"{u}@{realm}:{realm}:{password(i)}".encode()).hexdigest()
        # the plain password column stays empty: auth_db reads ha1 (calculate_ha1 = 0)
        rows.append((u, realm, "", ha1, ha1b))
    db.executemany("INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def write_pinhole_db(count, path, realm):
    # the table pinhole's SQLite store creates (src/store/sqlite_store.cc); the HA1s are
    # H(username:realm:password) in hex, as the admin API's POST /users computes them
    db = sqlite3.connect(path)
    rows = []
    for i in range(1, count + 1):
        a1 = f"{user(i)}:{realm}:{password(i)}".encode()
        rows.append((user(i), realm, hashlib.md5(a1).hexdigest(), hashlib.sha256(a1).hexdigest()))
    db.executemany("INSERT OR REPLACE INTO users (username, realm, ha1_md5, ha1_sha256) VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def post_users(count, hostport, realm, connections):
    host, port = hostport.rsplit(":", 1)
    errors = []

    def worker(first):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        for i in range(first, count + 1, connections):
            body = json.dumps({"username": user(i), "realm": realm, "password": password(i)})
            conn.request("POST", "/users", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status not in (200, 201):
                errors.append(f"POST /users {user(i)}: {resp.status} {data[:200]!r}")
                return
        conn.close()

    threads = [threading.Thread(target=worker, args=(k + 1,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("provision_users.py: " + errors[0])


def main(argv):
    if len(argv) < 4 or argv[1] not in ("csv", "kamailio", "pinhole", "pinhole-db"):
        sys.exit(__doc__)
    count = int(argv[2])
    if argv[1] == "csv":
        write_csv(count, argv[3])
    elif argv[1] == "kamailio":
        write_kamailio_db(count, argv[3], argv[4])
    elif argv[1] == "pinhole-db":
        write_pinhole_db(count, argv[3], argv[4])
    else:
        post_users(count, argv[3], argv[4], int(argv[5]) if len(argv) > 5 else 4)


if __name__ == "__main__":
    main(sys.argv)
