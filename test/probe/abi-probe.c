/* SPDX-License-Identifier: MIT
 * ABI probe: prints, as JSON, the sizes, field offsets, request numbers and flag values that
 * src/ioctl mirrors, taken from the kernel uapi headers installed on this machine
 * (linux-libc-dev). test/unit/ioctl/abi.test.ts compiles and runs it when a C compiler is
 * available, compares its output with abi-expected.json, and checks the TypeScript values.
 * Build: cc -std=c11 -O0 -o abi-probe abi-probe.c
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <linux/dm-ioctl.h>
#include <linux/loop.h>
#include <linux/fs.h>
#include <linux/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/mount.h>

static int first;
static void begin(const char *section) { printf("%s  \"%s\": {", first ? "" : ",\n", section); first = 0; }
static int item_first;
static void item(const char *name, unsigned long long v) {
  printf("%s\n    \"%s\": %llu", item_first ? "" : ",", name, v);
  item_first = 0;
}
static void end(void) { printf("\n  }"); item_first = 1; }

#define SZ(T) item(#T, sizeof(struct T))
#define OFF(T, F) item(#T "." #F, offsetof(struct T, F))
#define C(X) item(#X, (unsigned long long)(X))

int main(void) {
  first = 1;
  item_first = 1;
  printf("{\n");

  begin("sizeof");
  SZ(dm_ioctl); SZ(dm_target_spec); SZ(dm_target_deps); SZ(dm_name_list);
  SZ(dm_target_versions); SZ(dm_target_msg); SZ(loop_info64); SZ(loop_config); SZ(statx);
  item("pollfd", sizeof(struct pollfd));
  end();

  begin("offsetof");
  OFF(dm_ioctl, version); OFF(dm_ioctl, data_size); OFF(dm_ioctl, data_start);
  OFF(dm_ioctl, target_count); OFF(dm_ioctl, open_count); OFF(dm_ioctl, flags);
  OFF(dm_ioctl, event_nr); OFF(dm_ioctl, padding); OFF(dm_ioctl, dev); OFF(dm_ioctl, name);
  OFF(dm_ioctl, uuid); OFF(dm_ioctl, data);
  OFF(dm_target_spec, sector_start); OFF(dm_target_spec, length); OFF(dm_target_spec, status);
  OFF(dm_target_spec, next); OFF(dm_target_spec, target_type);
  OFF(dm_target_deps, count); OFF(dm_target_deps, padding); OFF(dm_target_deps, dev);
  OFF(dm_name_list, dev); OFF(dm_name_list, next); OFF(dm_name_list, name);
  OFF(dm_target_versions, next); OFF(dm_target_versions, version); OFF(dm_target_versions, name);
  OFF(dm_target_msg, sector); OFF(dm_target_msg, message);
  OFF(loop_info64, lo_device); OFF(loop_info64, lo_inode); OFF(loop_info64, lo_rdevice);
  OFF(loop_info64, lo_offset); OFF(loop_info64, lo_sizelimit); OFF(loop_info64, lo_number);
  OFF(loop_info64, lo_encrypt_type); OFF(loop_info64, lo_encrypt_key_size); OFF(loop_info64, lo_flags);
  OFF(loop_info64, lo_file_name); OFF(loop_info64, lo_crypt_name); OFF(loop_info64, lo_encrypt_key);
  OFF(loop_info64, lo_init);
  OFF(loop_config, fd); OFF(loop_config, block_size); OFF(loop_config, info); OFF(loop_config, __reserved);
  OFF(statx, stx_mask); OFF(statx, stx_blksize); OFF(statx, stx_attributes); OFF(statx, stx_nlink);
  OFF(statx, stx_uid); OFF(statx, stx_gid); OFF(statx, stx_mode); OFF(statx, stx_ino);
  OFF(statx, stx_size); OFF(statx, stx_blocks); OFF(statx, stx_attributes_mask);
  OFF(statx, stx_atime); OFF(statx, stx_rdev_major); OFF(statx, stx_rdev_minor);
  OFF(statx, stx_dev_major); OFF(statx, stx_dev_minor);
  end();

  begin("const");
  C(DM_NAME_LEN); C(DM_UUID_LEN); C(DM_MAX_TYPE_NAME); C(DM_IOCTL);
  C(DM_VERSION_MAJOR); C(DM_VERSION_MINOR); C(DM_VERSION_PATCHLEVEL);
  C(DM_VERSION_CMD); C(DM_REMOVE_ALL_CMD); C(DM_LIST_DEVICES_CMD); C(DM_DEV_CREATE_CMD);
  C(DM_DEV_REMOVE_CMD); C(DM_DEV_RENAME_CMD); C(DM_DEV_SUSPEND_CMD); C(DM_DEV_STATUS_CMD);
  C(DM_DEV_WAIT_CMD); C(DM_TABLE_LOAD_CMD); C(DM_TABLE_CLEAR_CMD); C(DM_TABLE_DEPS_CMD);
  C(DM_TABLE_STATUS_CMD); C(DM_LIST_VERSIONS_CMD); C(DM_TARGET_MSG_CMD); C(DM_DEV_SET_GEOMETRY_CMD);
  C(DM_DEV_ARM_POLL_CMD); C(DM_GET_TARGET_VERSION_CMD);
  C(DM_VERSION); C(DM_REMOVE_ALL); C(DM_LIST_DEVICES); C(DM_DEV_CREATE); C(DM_DEV_REMOVE);
  C(DM_DEV_RENAME); C(DM_DEV_SUSPEND); C(DM_DEV_STATUS); C(DM_DEV_WAIT); C(DM_DEV_ARM_POLL);
  C(DM_TABLE_LOAD); C(DM_TABLE_CLEAR); C(DM_TABLE_DEPS); C(DM_TABLE_STATUS); C(DM_LIST_VERSIONS);
  C(DM_GET_TARGET_VERSION); C(DM_TARGET_MSG); C(DM_DEV_SET_GEOMETRY);
  C(DM_READONLY_FLAG); C(DM_SUSPEND_FLAG); C(DM_PERSISTENT_DEV_FLAG); C(DM_STATUS_TABLE_FLAG);
  C(DM_ACTIVE_PRESENT_FLAG); C(DM_INACTIVE_PRESENT_FLAG); C(DM_BUFFER_FULL_FLAG); C(DM_SKIP_BDGET_FLAG);
  C(DM_SKIP_LOCKFS_FLAG); C(DM_NOFLUSH_FLAG); C(DM_QUERY_INACTIVE_TABLE_FLAG); C(DM_UEVENT_GENERATED_FLAG);
  C(DM_UUID_FLAG); C(DM_SECURE_DATA_FLAG); C(DM_DATA_OUT_FLAG); C(DM_DEFERRED_REMOVE);
  C(DM_INTERNAL_SUSPEND_FLAG); C(DM_IMA_MEASUREMENT_FLAG);
  C(DM_NAME_LIST_FLAG_HAS_UUID); C(DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID);
  C(LO_NAME_SIZE); C(LO_KEY_SIZE); C(LO_FLAGS_READ_ONLY); C(LO_FLAGS_AUTOCLEAR); C(LO_FLAGS_PARTSCAN);
  C(LO_FLAGS_DIRECT_IO); C(LOOP_SET_STATUS_SETTABLE_FLAGS); C(LOOP_SET_STATUS_CLEARABLE_FLAGS);
  C(LOOP_CONFIGURE_SETTABLE_FLAGS); C(LO_CRYPT_NONE);
  C(LOOP_SET_FD); C(LOOP_CLR_FD); C(LOOP_SET_STATUS); C(LOOP_GET_STATUS); C(LOOP_SET_STATUS64);
  C(LOOP_GET_STATUS64); C(LOOP_CHANGE_FD); C(LOOP_SET_CAPACITY); C(LOOP_SET_DIRECT_IO);
  C(LOOP_SET_BLOCK_SIZE); C(LOOP_CONFIGURE); C(LOOP_CTL_ADD); C(LOOP_CTL_REMOVE); C(LOOP_CTL_GET_FREE);
  C(BLKSSZGET); C(BLKFLSBUF); C(BLKROGET); C(BLKROSET); C(BLKRRPART); C(BLKGETSIZE); C(BLKBSZGET);
  C(BLKGETSIZE64); C(BLKDISCARD); C(BLKPBSZGET); C(BLKSECDISCARD); C(BLKZEROOUT);
  C(AT_SYMLINK_NOFOLLOW); C(AT_EMPTY_PATH); C(STATX_BASIC_STATS);
  C(POLLIN); C(POLLPRI); C(POLLOUT); C(POLLERR); C(POLLHUP); C(POLLNVAL);
  C(MS_RDONLY); C(MS_NOSUID); C(MS_NODEV); C(MS_NOEXEC); C(MS_REMOUNT); C(MS_BIND);
  end();

  printf("\n}\n");
  return 0;
}
