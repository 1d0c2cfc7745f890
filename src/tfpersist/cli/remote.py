"""``tfpersist remote``: the local S3 object store behind the DVC remote."""

from __future__ import annotations

from tfpersist.cli.common import positive


def add_parser(sub, trust) -> None:
    p = sub.add_parser(
        "remote",
        help="start or stop the local S3 object store behind the DVC remote (SeaweedFS)",
        description="up: start SeaweedFS serving S3 on 127.0.0.1 (data in --dir) and create the "
        "bucket; down: stop it; status: exit 0 if it runs. The repository's default DVC remote "
        "points there; 'dvc remote modify --local storage url s3://BUCKET/path' points it "
        "elsewhere.",
    )
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--dir", default=".remote", help="data directory (default: .remote)")
    p.add_argument("--port", type=positive, default=8333, help="S3 port (default 8333)")
    p.set_defaults(func=cmd_remote)


def cmd_remote(args) -> int:
    from tfpersist.versions import remote

    if args.action == "up":
        server = remote.start(args.dir, args.port)
        print(f"remote: S3 on {server.endpoint} (SeaweedFS pid {server.pid}, data in {args.dir})")
    elif args.action == "down":
        stopped = remote.stop(remote.status(args.dir))
        print("remote: stopped" if stopped else "remote: not running")
    else:
        server = remote.status(args.dir)
        print(f"remote: up on {server.endpoint}" if server else "remote: not running")
        return 0 if server else 1
    return 0
