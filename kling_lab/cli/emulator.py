"""``kling-lab emulator``: serve the local fal emulator in the foreground."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import EXIT_OK, port, positive_int

FAULTS = ("429", "500", "503", "drop", "lost-submit", "content-policy", "truncated-video")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("emulator", help="serve the local fal emulator in the foreground")
    p.add_argument("--port", type=port, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--queue-delay", type=float, default=1.0, metavar="S")
    p.add_argument("--service-time", type=float, default=3.0, metavar="S")
    p.add_argument("--concurrency", type=positive_int, default=4)
    p.add_argument("--render-scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--show-params",
        action="store_true",
        help="burn the prompt, cfg_scale and negative prompt into placeholders (default: a neutral clip "
        "code, so A/B votes stay blind)",
    )
    for fault in FAULTS:
        p.add_argument(f"--rate-{fault}", type=float, default=0.0, metavar="P")
    p.set_defaults(func=cmd_emulator)


def cmd_emulator(args: argparse.Namespace) -> int:
    from kling_lab.backends.emulator import EmulatorConfig, EmulatorServer
    from kling_lab.errors import BackendConfigError

    rates = {f"rate_{name}": getattr(args, f"rate_{name}") for name in (f.replace("-", "_") for f in FAULTS)}
    config = EmulatorConfig(
        queue_delay_s=args.queue_delay,
        service_time_s=args.service_time,
        concurrency=args.concurrency,
        render_scale=args.render_scale,
        seed=args.seed,
        blind=not args.show_params,
        **rates,
    )
    server = EmulatorServer(config, port=args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the port is taken, or not ours to bind
        raise BackendConfigError(f"emulator: cannot listen on 127.0.0.1 port {args.port}: {exc.strerror}") from None
    return EXIT_OK
