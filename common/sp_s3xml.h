/* sp_s3xml.h: the little of S3's XML answers sandpipe reads (ListObjectsV2
 * entries, an UploadId, an error Code): elements found by name in a flat
 * scan, their text with the five XML entities and character references
 * decoded. Not a general XML parser: S3's answers have no attributes on
 * these elements, no CDATA and no comments. */
#ifndef SP_S3XML_H
#define SP_S3XML_H

#include <stddef.h>

/* The text of the first <name>…</name> in xml[0..len) into out (decoded,
 * NUL-terminated). Returns a pointer just past the closing tag, or NULL
 * if there is none or the text does not fit outlen. */
const char *s3xml_text(const char *xml, size_t len, const char *name, char *out,
                       size_t outlen);

/* The span of the first <name>…</name> element's content in
 * xml[0..len): *start and *n; returns a pointer past it, or NULL. */
const char *s3xml_elem(const char *xml, size_t len, const char *name,
                       const char **start, size_t *n);

#endif
