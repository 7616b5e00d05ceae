#!/usr/bin/env python3
"""The desktop's side of the tray, for the end-to-end tests: what a panel provides, on a private session bus.

    desktop_services.py watcher        own org.kde.StatusNotifierWatcher (with a host registered, as a panel
                                       would) and print one JSON line per item that registers
    desktop_services.py notifications  own org.freedesktop.Notifications and print one JSON line per notification
                                       shown: app name, icon, summary, body
    desktop_services.py logind         own org.freedesktop.login1 (run it on the bus the app takes for the system
                                       bus); each SIGUSR1 is a suspend and resume: PrepareForSleep(true), then
                                       PrepareForSleep(false)
    desktop_services.py dump ITEM      print the item's properties and its menu (com.canonical.dbusmenu) as JSON
    desktop_services.py click ITEM L   activate the menu entry whose label starts with L, as a click would
    desktop_services.py windows TITLE  count the top-level X windows named TITLE that are shown
    desktop_services.py close TITLE    ask the X window titled TITLE to close (WM_DELETE_WINDOW), as a window
                                       manager's close button does

ITEM is what registered: "<bus name><object path>", e.g. ":1.7/org/ayatana/NotificationItem/tokenkeep".

The StatusNotifierItem protocol (freedesktop.org's draft, as KDE and libayatana-appindicator implement it): the
watcher keeps the list of items and says whether a host shows them; an item exports org.kde.StatusNotifierItem
and names its menu's object path in `Menu`; the menu is libdbusmenu's com.canonical.dbusmenu (GetLayout, Event).
Needs python3-dbus and python3-gi (Debian).
"""

import json
import sys

import dbus
import dbus.mainloop.glib
import dbus.service

WATCHER = "org.kde.StatusNotifierWatcher"
ITEM = "org.kde.StatusNotifierItem"
MENU = "com.canonical.dbusmenu"


class Watcher(dbus.service.Object):
    """A StatusNotifierWatcher with one host (this process) registered."""

    def __init__(self, bus):
        self.items = []
        self.name = dbus.service.BusName(WATCHER, bus, do_not_queue=True)
        super().__init__(bus, "/StatusNotifierWatcher")
        bus.add_signal_receiver(
            self.owner_changed, "NameOwnerChanged", "org.freedesktop.DBus", "org.freedesktop.DBus"
        )

    @dbus.service.method(WATCHER, in_signature="s", sender_keyword="sender")
    def RegisterStatusNotifierItem(self, service, sender=None):
        # libayatana passes its object path; others pass a bus name.
        item = sender + service if service.startswith("/") else service
        if item not in self.items:
            self.items.append(item)
        print(json.dumps({"registered": item}), flush=True)
        self.StatusNotifierItemRegistered(item)

    @dbus.service.method(WATCHER, in_signature="s")
    def RegisterStatusNotifierHost(self, service):
        pass

    @dbus.service.signal(WATCHER, signature="s")
    def StatusNotifierItemRegistered(self, item):
        pass

    @dbus.service.signal(WATCHER, signature="s")
    def StatusNotifierItemUnregistered(self, item):
        pass

    @dbus.service.signal(WATCHER, signature="")
    def StatusNotifierHostRegistered(self):
        pass

    def owner_changed(self, name, old, new):
        if new:
            return
        for item in [i for i in self.items if i.split("/", 1)[0] == name]:
            self.items.remove(item)
            print(json.dumps({"unregistered": item}), flush=True)
            self.StatusNotifierItemUnregistered(item)

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, prop):
        return self.GetAll(interface)[prop]

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        return {
            "RegisteredStatusNotifierItems": dbus.Array(self.items, signature="s"),
            "IsStatusNotifierHostRegistered": dbus.Boolean(True),
            "ProtocolVersion": dbus.Int32(0),
        }


class Notifications(dbus.service.Object):
    """A notification server (the Desktop Notifications Specification, 1.2) that shows nothing and records all."""

    def __init__(self, bus):
        self.next_id = 0
        self.name = dbus.service.BusName("org.freedesktop.Notifications", bus, do_not_queue=True)
        super().__init__(bus, "/org/freedesktop/Notifications")

    @dbus.service.method("org.freedesktop.Notifications", in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout):
        self.next_id += 1
        print(
            json.dumps(
                {
                    "notification": {
                        "id": self.next_id,
                        "appName": str(app_name),
                        "replacesId": int(replaces_id),
                        "icon": str(app_icon),
                        "summary": str(summary),
                        "body": str(body),
                        "desktopEntry": str(hints.get("desktop-entry", "")),
                    }
                }
            ),
            flush=True,
        )
        return dbus.UInt32(self.next_id)

    @dbus.service.method("org.freedesktop.Notifications", in_signature="", out_signature="as")
    def GetCapabilities(self):
        return dbus.Array(["body"], signature="s")

    @dbus.service.method("org.freedesktop.Notifications", in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("tokenkeep-test", "tokenkeep", "1", "1.2")

    @dbus.service.method("org.freedesktop.Notifications", in_signature="u")
    def CloseNotification(self, ident):
        pass


class Logind(dbus.service.Object):
    """The part of systemd-logind's Manager that announces sleep (org.freedesktop.login1.Manager)."""

    def __init__(self, bus):
        self.name = dbus.service.BusName("org.freedesktop.login1", bus, do_not_queue=True)
        super().__init__(bus, "/org/freedesktop/login1")

    @dbus.service.signal("org.freedesktop.login1.Manager", signature="b")
    def PrepareForSleep(self, start):
        pass

    def sleep_and_wake(self):
        from gi.repository import GLib

        self.PrepareForSleep(True)
        print(json.dumps({"slept": True}), flush=True)

        def wake():
            self.PrepareForSleep(False)
            print(json.dumps({"woke": True}), flush=True)
            return False

        GLib.timeout_add(200, wake)
        return True


def split(item):
    name, path = item.split("/", 1)
    return name, "/" + path


def plain(value):
    """dbus values as JSON-able Python values."""
    if isinstance(value, (dbus.String, dbus.ObjectPath)):
        return str(value)
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, (dbus.Int32, dbus.UInt32, dbus.Int64, dbus.UInt64, dbus.Int16, dbus.UInt16, dbus.Byte)):
        return int(value)
    if isinstance(value, dbus.Dictionary):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (dbus.Array, dbus.Struct, list, tuple)):
        return [plain(v) for v in value]
    return value


def entries(layout):
    """The menu's entries, depth first: id, label, enabled, visible, type."""
    out = []
    for child in layout[2]:
        ident, props, children = child
        props = plain(props)
        out.append(
            {
                "id": int(ident),
                "label": props.get("label", "").replace("_", ""),
                "enabled": props.get("enabled", True),
                "visible": props.get("visible", True),
                "type": props.get("type", "standard"),
            }
        )
        out.extend(entries(child))
    return out


def dump(bus, item):
    name, path = split(item)
    props = dbus.Interface(bus.get_object(name, path), dbus.PROPERTIES_IFACE).GetAll(ITEM)
    props = {k: plain(v) for k, v in props.items() if k not in ("IconPixmap", "AttentionIconPixmap", "OverlayIconPixmap")}
    menu = dbus.Interface(bus.get_object(name, props["Menu"]), MENU)
    _revision, layout = menu.GetLayout(0, -1, dbus.Array([], signature="s"))
    return {"item": props, "menu": entries(layout)}


def click(bus, item, label):
    state = dump(bus, item)
    name, _path = split(item)
    for entry in state["menu"]:
        if entry["label"].startswith(label) and entry["type"] != "separator":
            menu = dbus.Interface(bus.get_object(name, state["item"]["Menu"]), MENU)
            menu.Event(entry["id"], "clicked", dbus.Int32(0, variant_level=1), dbus.UInt32(0))
            return entry
    raise SystemExit(f"no menu entry starts with {label!r}: {[e['label'] for e in state['menu']]}")


def close_window(title, count_only=False):
    """Sends WM_PROTOCOLS/WM_DELETE_WINDOW to every top-level X window named `title` (libX11 through ctypes:
    Xvfb has no window manager to do it); with `count_only`, counts those that are shown instead."""
    import ctypes
    import ctypes.util

    x = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11") or "libX11.so.6")
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XDefaultRootWindow.restype = ctypes.c_ulong
    x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x.XInternAtom.restype = ctypes.c_ulong
    x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong),
                             ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                             ctypes.POINTER(ctypes.c_uint)]
    x.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_char_p)]
    x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x.XFlush.argtypes = [ctypes.c_void_p]

    class Attributes(ctypes.Structure):
        _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
                    ("border_width", ctypes.c_int), ("depth", ctypes.c_int), ("visual", ctypes.c_void_p),
                    ("root", ctypes.c_ulong), ("class", ctypes.c_int), ("bit_gravity", ctypes.c_int),
                    ("win_gravity", ctypes.c_int), ("backing_store", ctypes.c_int),
                    ("backing_planes", ctypes.c_ulong), ("backing_pixel", ctypes.c_ulong),
                    ("save_under", ctypes.c_int), ("colormap", ctypes.c_ulong), ("map_installed", ctypes.c_int),
                    ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
                    ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
                    ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p)]

    x.XGetWindowAttributes.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(Attributes)]

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class Event(ctypes.Union):
        _fields_ = [("client", ClientMessage), ("pad", ctypes.c_long * 24)]

    display = x.XOpenDisplay(None)
    if not display:
        raise SystemExit("cannot open the X display")
    root = x.XDefaultRootWindow(display)
    parent, root_return = ctypes.c_ulong(), ctypes.c_ulong()
    children, count = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
    x.XQueryTree(display, root, ctypes.byref(root_return), ctypes.byref(parent), ctypes.byref(children),
                 ctypes.byref(count))
    protocols = x.XInternAtom(display, b"WM_PROTOCOLS", 0)
    delete = x.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
    closed = 0
    for i in range(count.value):
        window = children[i]
        name = ctypes.c_char_p()
        if x.XFetchName(display, window, ctypes.byref(name)) and name.value == title.encode():
            if count_only:
                attributes = Attributes()
                x.XGetWindowAttributes(display, window, ctypes.byref(attributes))
                closed += attributes.map_state == 2  # IsViewable
                continue
            event = Event()
            event.client.type = 33  # ClientMessage
            event.client.window = window
            event.client.message_type = protocols
            event.client.format = 32
            event.client.data[0] = delete
            event.client.data[1] = 0  # CurrentTime
            x.XSendEvent(display, window, 0, 0, ctypes.byref(event))
            closed += 1
    x.XFlush(display)
    if count_only:
        return {"shown": closed}
    if closed == 0:
        raise SystemExit(f"no top-level window is named {title!r}")
    return {"closed": closed}


def main():
    args = sys.argv[1:]
    if args[:1] == ["watcher"]:
        from gi.repository import GLib

        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        bus = dbus.SessionBus()
        _watcher = Watcher(bus)
        print(json.dumps({"ready": WATCHER}), flush=True)
        GLib.MainLoop().run()
    elif args[:1] == ["notifications"]:
        from gi.repository import GLib

        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        bus = dbus.SessionBus()
        _server = Notifications(bus)
        print(json.dumps({"ready": "org.freedesktop.Notifications"}), flush=True)
        GLib.MainLoop().run()
    elif args[:1] == ["logind"]:
        import signal

        from gi.repository import GLib

        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        bus = dbus.SessionBus()
        logind = Logind(bus)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, logind.sleep_and_wake)
        print(json.dumps({"ready": "org.freedesktop.login1"}), flush=True)
        GLib.MainLoop().run()
    elif args[:1] == ["dump"] and len(args) == 2:
        print(json.dumps(dump(dbus.SessionBus(), args[1])))
    elif args[:1] == ["windows"] and len(args) == 2:
        print(json.dumps(close_window(args[1], count_only=True)))
    elif args[:1] == ["close"] and len(args) == 2:
        print(json.dumps(close_window(args[1])))
    elif args[:1] == ["click"] and len(args) == 3:
        print(json.dumps(click(dbus.SessionBus(), args[1], args[2])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
