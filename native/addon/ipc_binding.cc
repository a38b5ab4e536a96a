// ipc_binding.cc: removes the host IPC objects a uid owns or created (SysV shared memory, message
// queues, semaphore sets; POSIX message queues). Landlock isolation shares the host's IPC
// namespace, so a leased sandbox uid's objects outlive its sandbox; the executor removes them when
// the lease ends (executor isolation/isolation.ts), before the uid can be leased again.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "bindings.h"
#include "errors.h"

namespace sbx {
namespace {

// The ids of /proc/sysvipc/<kind> whose uid or cuid is `uid` (columns named by the header line).
std::vector<int> SysvIdsOf(const char *kind, unsigned long uid) {
  std::vector<int> ids;
  std::string path = std::string("/proc/sysvipc/") + kind;
  FILE *f = fopen(path.c_str(), "re");
  if (!f) return ids;
  char line[1024];
  int id_col = -1, uid_col = -1, cuid_col = -1;
  if (fgets(line, sizeof line, f)) {
    int col = 0;
    for (char *save = nullptr, *t = strtok_r(line, " \t\n", &save); t;
         t = strtok_r(nullptr, " \t\n", &save), col++) {
      if (!strcmp(t, "shmid") || !strcmp(t, "msqid") || !strcmp(t, "semid")) id_col = col;
      if (!strcmp(t, "uid")) uid_col = col;
      if (!strcmp(t, "cuid")) cuid_col = col;
    }
  }
  while (id_col >= 0 && uid_col >= 0 && cuid_col >= 0 && fgets(line, sizeof line, f)) {
    long id = -1;
    bool mine = false;
    int col = 0;
    for (char *save = nullptr, *t = strtok_r(line, " \t\n", &save); t;
         t = strtok_r(nullptr, " \t\n", &save), col++) {
      if (col == id_col) id = strtol(t, nullptr, 10);
      if ((col == uid_col || col == cuid_col) && strtoul(t, nullptr, 10) == uid) mine = true;
    }
    if (mine && id >= 0) ids.push_back((int)id);
  }
  fclose(f);
  return ids;
}

// The POSIX message queues of this IPC namespace owned by `uid`, unlinked through a detached
// mount of its mqueue filesystem (nothing appears in the mount tree). Count removed, or -errno.
int RemoveMqueuesOf(uid_t uid) {
  int fs = (int)syscall(SYS_fsopen, "mqueue", FSOPEN_CLOEXEC);
  if (fs < 0) return -errno;
  int mnt = -1;
  if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0)
    mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
  int err = errno;
  close(fs);
  if (mnt < 0) return -err;
  int dirfd = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dirfd >= 0 ? fdopendir(dirfd) : nullptr;
  if (!d) {
    err = errno;
    if (dirfd >= 0) close(dirfd);
    close(mnt);
    return -err;
  }
  std::vector<std::string> names;
  for (struct dirent *e; (e = readdir(d)) != nullptr;) {
    if (e->d_name[0] == '.') continue;
    struct statx st;  // statx: in glibc since 2.28 (fstatat's symbol is 2.33's)
    if (statx(mnt, e->d_name, AT_SYMLINK_NOFOLLOW, STATX_UID, &st) == 0 && st.stx_uid == uid)
      names.push_back(e->d_name);
  }
  int removed = 0;
  for (const std::string &n : names)
    if (unlinkat(mnt, n.c_str(), 0) == 0) removed++;
  closedir(d);
  close(mnt);
  return removed;
}

// ipcRemoveOwnedBy(uid): { shm, msg, sem, mqueue } removed (mqueue: -errno when the queues could
// not be listed, e.g. without CAP_SYS_ADMIN).
Napi::Value IpcRemoveOwnedBy(const Napi::CallbackInfo &info) {
  uint32_t uid = ArgUint32(info, 0, "ipcRemoveOwnedBy(uid: number)");
  int shm = 0, msg = 0, sem = 0;
  for (int id : SysvIdsOf("shm", uid))
    if (shmctl(id, IPC_RMID, nullptr) == 0) shm++;
  for (int id : SysvIdsOf("msg", uid))
    if (msgctl(id, IPC_RMID, nullptr) == 0) msg++;
  for (int id : SysvIdsOf("sem", uid))
    if (semctl(id, 0, IPC_RMID) == 0) sem++;
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("shm", shm);
  o.Set("msg", msg);
  o.Set("sem", sem);
  o.Set("mqueue", RemoveMqueuesOf((uid_t)uid));
  return o;
}

}  // namespace

void InitIpcBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("ipcRemoveOwnedBy", Napi::Function::New(env, IpcRemoveOwnedBy, "ipcRemoveOwnedBy"));
}

}  // namespace sbx
