#!/usr/bin/python3
"""A real RTSP server on 127.0.0.1 for facegate's tests: gst-rtsp-server serving a live test
pattern encoded as H.264 (or H.265, to test the refusal), optionally behind basic auth.

Prints "READY <port>" once it accepts connections, then serves until killed.
Needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-{base,good,bad,ugly}.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mount", default="/cam")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--codec", choices=["h264", "h265"], default="h264")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    Gst.init(None)
    caps = f"video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1"
    if args.codec == "h264":
        encode = (
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} "
            "! rtph264pay name=pay0 pt=96 config-interval=1"
        )
    else:
        encode = f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} ! rtph265pay name=pay0 pt=96"
    launch = f"( videotestsrc is-live=true pattern=ball ! {caps} ! videoconvert ! {encode} )"

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)

    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "camera-user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("camera-user", "media.factory.access", True)
        permissions.add_permission_for_role("camera-user", "media.factory.construct", True)
        factory.set_permissions(permissions)

    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"READY {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
