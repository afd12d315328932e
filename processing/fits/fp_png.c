/*
 * fp_png.c - 8-bit grayscale PNG output with libpng.
 */
#include <png.h>
#include <stdio.h>

#include "fp__png.h"

/* libpng reports errors by longjmp; nothing here is modified after setjmp. */
static int fp_png_write_rows(FILE *fp, const unsigned char *pix, int width, int height)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!png)
        return -1;
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(pix + (size_t)y * width));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int fp_png_write_gray(const char *path, const unsigned char *pix, int width, int height)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    int rc = fp_png_write_rows(fp, pix, width, height);
    if (fclose(fp) != 0)
        rc = -1;
    if (rc != 0)
        remove(path);
    return rc;
}
