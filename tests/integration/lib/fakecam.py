"""Aravis's fake GigE Vision camera on the loopback interface, run inside the test's own process
through ctypes (libaravis-0.8), so an integration test can start, stop and restart a camera that
inspectd reaches over real GigE Vision. While it exists it holds /tmp/inspectd-test-gvfake.lock,
as the C tests do: runs on one host take turns on GVCP port 3956."""
import ctypes
import fcntl

DEVICE_ID = "Aravis-Fake-GV01"
SERIAL = "GV01"
LOCK = "/tmp/inspectd-test-gvfake.lock"


class FakeCamera:
    def __init__(self, serial=SERIAL):
        self.serial = serial.encode()
        self.arv = ctypes.CDLL("libaravis-0.8.so.0")
        self.gobject = ctypes.CDLL("libgobject-2.0.so.0")
        self.arv.arv_gv_fake_camera_new.restype = ctypes.c_void_p
        self.arv.arv_gv_fake_camera_new.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        self.arv.arv_gv_fake_camera_is_running.argtypes = [ctypes.c_void_p]
        self.gobject.g_object_unref.argtypes = [ctypes.c_void_p]
        self.cam = None
        self.lock = None

    def __enter__(self):
        self.lock = open(LOCK, "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        self.lock.close()

    def start(self):
        assert self.cam is None
        self.cam = self.arv.arv_gv_fake_camera_new(b"lo", self.serial)
        if not self.cam or not self.arv.arv_gv_fake_camera_is_running(self.cam):
            raise RuntimeError("the fake GigE Vision camera did not start on lo")

    def stop(self):
        if self.cam:
            self.gobject.g_object_unref(self.cam)
            self.cam = None
