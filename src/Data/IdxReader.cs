using System.Buffers.Binary;
using System.IO.Compression;

namespace ZeroFL.Data;

/// <summary>Unsigned-byte images read from an IDX file: <c>Pixels</c> is <c>[Count, Rows, Cols]</c> row-major.</summary>
public sealed record IdxImages(byte[] Pixels, int Count, int Rows, int Cols);

/// <summary>An images file and its labels file read together; the counts are known to agree.</summary>
public sealed record IdxLabelledImages(IdxImages Images, byte[] Labels);

/// <summary>
/// Reads IDX files (the MNIST / Fashion-MNIST format): a big-endian header of a 4-byte magic number
/// (two zero bytes, a type code, the number of dimensions) and one 4-byte size per dimension,
/// followed by the data. Files may be plain or gzip-compressed; gzip is detected by its magic
/// bytes, not by the file name. Every problem throws <see cref="DataFormatException"/> naming the
/// file; sizes are checked against the file before anything large is allocated.
/// </summary>
public static class IdxReader
{
    /// <summary>Magic number of an unsigned-byte vector <c>[count]</c> (labels).</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>Magic number of an unsigned-byte tensor <c>[count, rows, cols]</c> (images).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Largest accepted image side; anything larger is treated as a corrupt header.</summary>
    public const int MaxImageSide = 4096;

    // Deflate cannot expand data by more than about 1032:1; a header that promises more than this
    // many bytes per compressed byte is lying (the file is truncated or the header corrupt).
    private const long MaxGzipRatio = 1100;

    // Gzip bodies are read in growing chunks, so a corrupt header cannot make us allocate much
    // more than the data that actually arrives.
    private const int FirstChunk = 1 << 20;

    /// <summary>Reads a labels file (magic 0x00000801) and returns one byte per sample.</summary>
    public static byte[] ReadLabels(string path) => Read(path, LabelsMagic, "unsigned-byte labels").Data;

    /// <summary>Reads an images file (magic 0x00000803) of <c>[count, rows, cols]</c> unsigned bytes.</summary>
    public static IdxImages ReadImages(string path)
    {
        var (dims, data) = Read(path, ImagesMagic, "unsigned-byte images");
        return new IdxImages(data, dims[0], dims[1], dims[2]);
    }

    /// <summary>Reads an images file and its labels file and checks that their counts agree.</summary>
    public static IdxLabelledImages ReadLabelledImages(string imagesPath, string labelsPath)
    {
        var labels = ReadLabels(labelsPath);
        var images = ReadImages(imagesPath);
        if (labels.Length != images.Count)
        {
            throw new DataFormatException(labelsPath,
                $"has {labels.Length} labels but {imagesPath} has {images.Count} images");
        }
        return new IdxLabelledImages(images, labels);
    }

    private static (int[] Dims, byte[] Data) Read(string path, int magic, string kind)
    {
        using var file = Open(path);
        try
        {
            return ReadFrom(path, file, magic, kind);
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(path, $"corrupt gzip data ({DataFiles.OneLine(e.Message)})", e);
        }
        catch (IOException e)
        {
            throw new DataFormatException(path, $"read error ({DataFiles.OneLine(e.Message)})", e);
        }
    }

    private static FileStream Open(string path)
        => DataFiles.OpenRead(path, "an IDX file");

    private static (int[] Dims, byte[] Data) ReadFrom(string path, FileStream file, int magic, string kind)
    {
        if (!file.CanSeek)
        {
            throw new DataFormatException(path, "is not a regular file");
        }
        long fileLength = file.Length;
        Span<byte> sniff = stackalloc byte[2];
        bool gzip = file.ReadAtLeast(sniff, 2, throwOnEndOfStream: false) == 2 && sniff[0] == 0x1f && sniff[1] == 0x8b;
        file.Position = 0;

        using var gzipStream = gzip ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: true) : null;
        Stream stream = gzipStream ?? (Stream)file;

        Span<byte> word = stackalloc byte[4];
        ReadHeaderWord(path, stream, word, 0);
        int actualMagic = BinaryPrimitives.ReadInt32BigEndian(word);
        if (actualMagic != magic)
        {
            throw new DataFormatException(path,
                $"wrong magic number 0x{actualMagic:X8} (expected 0x{magic:X8}, {kind})");
        }

        int rank = magic & 0xff;
        var dims = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            ReadHeaderWord(path, stream, word, 1 + d);
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(word);
        }
        long total = CheckDimensions(path, dims);
        long headerLength = 4L * (1 + rank);

        byte[] data;
        if (gzip)
        {
            if (total > (fileLength + 1) * MaxGzipRatio)
            {
                throw new DataFormatException(path,
                    $"truncated body: the header promises {total} bytes but the {fileLength}-byte gzip file cannot hold that many");
            }
            data = ReadBody(path, stream, (int)total, Math.Min((int)total, FirstChunk));
        }
        else
        {
            long available = fileLength - headerLength;
            if (available < total)
            {
                throw new DataFormatException(path,
                    $"truncated body: expected {total} data bytes after the header, file has {available}");
            }
            data = ReadBody(path, stream, (int)total, (int)total);
        }

        Span<byte> extra = stackalloc byte[1];
        if (stream.Read(extra) != 0)
        {
            throw new DataFormatException(path, $"unexpected data after the {total} bytes the header declares");
        }
        return (dims, data);
    }

    private static void ReadHeaderWord(string path, Stream stream, Span<byte> word, int index)
    {
        int read = stream.ReadAtLeast(word, 4, throwOnEndOfStream: false);
        if (read < 4)
        {
            throw new DataFormatException(path,
                $"truncated header: file ends {index * 4 + read} bytes in, inside the header");
        }
    }

    private static long CheckDimensions(string path, int[] dims)
    {
        string shape = string.Join(" x ", dims);
        if (dims[0] < 0)
        {
            throw new DataFormatException(path, $"absurd dimensions {shape} (negative count)");
        }
        for (int d = 1; d < dims.Length; d++)
        {
            if (dims[d] <= 0 || dims[d] > MaxImageSide)
            {
                throw new DataFormatException(path,
                    $"absurd dimensions {shape} (each image side must be 1..{MaxImageSide})");
            }
        }
        long total = 1;
        foreach (int size in dims)
        {
            total *= size;
            if (total > Array.MaxLength)
            {
                throw new DataFormatException(path,
                    $"absurd dimensions {shape} (more than {Array.MaxLength} bytes of data)");
            }
        }
        return total;
    }

    private static byte[] ReadBody(string path, Stream stream, int total, int firstChunk)
    {
        var buffer = new byte[firstChunk];
        int filled = 0;
        while (filled < total)
        {
            if (filled == buffer.Length)
            {
                Array.Resize(ref buffer, (int)Math.Min(total, 2L * buffer.Length));
            }
            int read = stream.Read(buffer, filled, buffer.Length - filled);
            if (read == 0)
            {
                throw new DataFormatException(path,
                    $"truncated body: expected {total} data bytes after the header, got {filled}");
            }
            filled += read;
        }
        return buffer;
    }

}
