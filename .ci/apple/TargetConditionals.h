/* The one Apple SDK header ring's C includes (ring-core/base.h), for the
 * macOS check in .ci/run, which compiles for the Apple targets with
 * Debian's clang and no SDK. Only what ring reads: macOS, not iOS. The
 * objects are never linked into anything that runs. */
#ifndef VMUX_CI_TARGET_CONDITIONALS_H
#define VMUX_CI_TARGET_CONDITIONALS_H
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_VISION 0
#define TARGET_OS_SIMULATOR 0
#endif
