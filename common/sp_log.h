/* sp_log.h: levelled logging to stderr. The macro checks the level before
 * any formatting happens; callers never pass secrets or tokens. */
#ifndef SP_LOG_H
#define SP_LOG_H

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR
} log_level;

extern log_level log_min_level;

/* Parse "debug|info|warn|error" into *out; returns 0, or -1 if unknown. */
int log_parse_level(const char *s, log_level *out);

/* Name of the program in each line (static string, set once at start). */
void log_set_program(const char *name);

void log_write(log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define LOG(lvl, ...)                                                          \
    do {                                                                       \
        if ((lvl) >= log_min_level)                                            \
            log_write((lvl), __VA_ARGS__);                                     \
    } while (0)
#define log_debug(...) LOG(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  LOG(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  LOG(LOG_WARN, __VA_ARGS__)
#define log_error(...) LOG(LOG_ERROR, __VA_ARGS__)

#endif
