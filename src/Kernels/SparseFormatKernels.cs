using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Two lossless layouts of a CSR matrix [rows, cols] (see <see cref="CsrKernels"/>) that cost fewer
/// bytes on the uplink, built from the CSR on the device and read back into a FedAvg sum there:
/// <list type="bullet">
/// <item>16-bit columns: the column indices of a matrix of at most <see cref="MaxColumns16"/>
/// columns, two per int (entry 2i in the low half of word i, entry 2i + 1 in the high half; an odd
/// count leaves the last high half 0): <see cref="PackedColumnWords"/>(count) ints.</item>
/// <item>Bitmap: one bit per entry of the matrix in row-major order (flat index i is bit i % 32 of
/// word i / 32; bits at or past rows * cols are 0), <see cref="BitmapWords"/>(rows * cols) ints;
/// the values are those of the CSR, in the same (row-major) order.</item>
/// </list>
/// Safety: the readers (<see cref="UnpackColumns16"/>, <see cref="BitmapScatterAdd"/>) take device
/// arrays that may come from untrusted uploads; they never read or write outside the views they
/// are given (a value index past the values is skipped, a bit past the matrix is ignored), so a
/// malformed layout gives a wrong sum, never an out-of-bounds access. The server validates uploads
/// on the host before they get here. CPU reference: <see cref="Reference.SparseFormatReference"/>.
/// </summary>
public sealed class SparseFormatKernels
{
    /// <summary>Most columns whose indices fit 16 bits.</summary>
    public const int MaxColumns16 = 1 << 16;

    /// <summary>Bitmap words one thread of <see cref="BitmapScatterAdd"/> walks (and one prefix entry covers).</summary>
    public const int ChunkWords = 32;

    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int, int> packColumns;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int> unpackColumns;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int> bitmapFromCsr;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int, int> chunkCounts;
    private readonly Action<Index1D, ArrayView<int>, int> scanChunks;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, float, long, int, int> bitmapScatterAdd;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public SparseFormatKernels(KernelLaunch launch)
    {
        this.launch = launch;
        packColumns = launch.Load<ArrayView<int>, ArrayView<int>, int, int, int>(PackColumns16Kernel);
        unpackColumns = launch.Load<ArrayView<int>, ArrayView<int>, int, int>(UnpackColumns16Kernel);
        bitmapFromCsr = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int>(BitmapFromCsrKernel);
        chunkCounts = launch.Load<ArrayView<int>, ArrayView<int>, int, int, int>(ChunkCountsKernel);
        scanChunks = launch.Load<ArrayView<int>, int>(ScanChunksKernel);
        bitmapScatterAdd = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, float, long, int, int>(BitmapScatterAddKernel);
    }

    /// <summary>Ints holding <paramref name="count"/> 16-bit columns: ceil(count / 2).</summary>
    public static int PackedColumnWords(int count) => count >= 0 ? (int)((count + 1L) / 2) : throw new ArgumentOutOfRangeException(nameof(count));

    /// <summary>Ints of the bitmap of a matrix of <paramref name="length"/> entries: ceil(length / 32).</summary>
    public static int BitmapWords(long length) => length >= 0 ? (int)((length + 31) / 32) : throw new ArgumentOutOfRangeException(nameof(length));

    /// <summary>Ints of the chunk prefix <see cref="BitmapScatterAdd"/> needs for a matrix of <paramref name="length"/> entries.</summary>
    public static int ChunkPrefixLength(long length) => (BitmapWords(length) + ChunkWords - 1) / ChunkWords + 1;

    /// <summary>Packs <paramref name="columns"/>[0, count) (each in [0, 65536)) into <paramref name="packed"/> (at least <see cref="PackedColumnWords"/>(count) ints).</summary>
    public void PackColumns16(ArrayView<int> columns, int count, ArrayView<int> packed)
    {
        HostCheck.Length(columns, count, "pack columns 16 columns");
        int words = PackedColumnWords(count);
        HostCheck.Length(packed, words, "pack columns 16 packed");
        if (words == 0)
        {
            return;
        }
        int t = launch.Threads(words);
        packColumns(t, columns, packed, count, words, t);
    }

    /// <summary>The inverse of <see cref="PackColumns16"/>: writes <paramref name="count"/> columns from <paramref name="packed"/>.</summary>
    public void UnpackColumns16(ArrayView<int> packed, int count, ArrayView<int> columns)
    {
        HostCheck.Length(columns, count, "unpack columns 16 columns");
        HostCheck.Length(packed, PackedColumnWords(count), "unpack columns 16 packed");
        if (count == 0)
        {
            return;
        }
        int t = launch.Threads(count);
        unpackColumns(t, packed, columns, count, t);
    }

    /// <summary>
    /// Writes the bitmap of the CSR matrix (<paramref name="rowPointers"/> [rows + 1],
    /// <paramref name="columns"/>) [rows, cols] into <paramref name="bitmap"/> (at least
    /// <see cref="BitmapWords"/>(rows * cols) ints; those are zeroed first). Index arrays are
    /// clamp-protected as in <see cref="CsrKernels"/>.
    /// </summary>
    public void BitmapFromCsr(ArrayView<int> rowPointers, ArrayView<int> columns, int rows, int cols, ArrayView<int> bitmap)
    {
        CheckShape(rows, cols, "bitmap from csr");
        HostCheck.Length(rowPointers, rows + 1L, "bitmap from csr row pointers");
        int words = BitmapWords((long)rows * cols);
        HostCheck.Length(bitmap, words, "bitmap from csr bitmap");
        var target = bitmap.SubView(0, words);
        launch.Zero(target);
        int t = launch.Threads(rows);
        bitmapFromCsr(t, rowPointers, columns, target, rows, cols, t);
    }

    /// <summary>
    /// dense [length] += <paramref name="weight"/> * the bitmap matrix: the j-th set bit (in flat
    /// order) adds <paramref name="weight"/> * values[j] at its position, the same sum
    /// <see cref="CsrKernels.ScatterAdd"/> makes of the same entries. <paramref name="chunkPrefix"/>
    /// (at least <see cref="ChunkPrefixLength"/>(length) ints) is scratch: per-chunk bit counts, scanned
    /// on the device. No host traffic.
    /// </summary>
    public void BitmapScatterAdd(ArrayView<int> bitmap, ArrayView<float> values, float weight, long length,
        ArrayView<int> chunkPrefix, ArrayView<float> dense)
    {
        HostCheck.Count(length, "bitmap scatter-add");
        int words = BitmapWords(length);
        HostCheck.Length(bitmap, words, "bitmap scatter-add bitmap");
        HostCheck.Length(dense, length, "bitmap scatter-add dense");
        int chunks = ChunkPrefixLength(length) - 1;
        HostCheck.Length(chunkPrefix, chunks + 1L, "bitmap scatter-add chunk prefix");
        if (words == 0 || values.Length == 0)
        {
            return;
        }
        var bits = bitmap.SubView(0, words);
        int t = launch.Threads(chunks);
        chunkCounts(t, bits, chunkPrefix, words, chunks, t);
        scanChunks(launch.Threads(1), chunkPrefix, chunks);
        bitmapScatterAdd(t, bits, chunkPrefix, values, dense, weight, length, chunks, t);
    }

    private static void CheckShape(int rows, int cols, string what)
    {
        if (rows <= 0 || cols <= 0)
        {
            throw new ArgumentException($"{what}: rows ({rows}) and columns ({cols}) must be positive");
        }
    }

    /// <summary>Word w = columns[2w] in the low half, columns[2w + 1] (or 0 past the count) in the high half.</summary>
    [GpuKernel]
    internal static void PackColumns16Kernel(Index1D index, ArrayView<int> columns, ArrayView<int> packed, int count, int words, int stride)
    {
        for (int w = index; w < words; w += stride)
        {
            int low = columns[2 * w] & 0xFFFF;
            int high = 2 * w + 1 < count ? columns[2 * w + 1] & 0xFFFF : 0;
            packed[w] = low | (high << 16);
        }
    }

    /// <summary>columns[i] = the 16-bit half i % 2 of word i / 2.</summary>
    [GpuKernel]
    internal static void UnpackColumns16Kernel(Index1D index, ArrayView<int> packed, ArrayView<int> columns, int count, int stride)
    {
        for (int i = index; i < count; i += stride)
        {
            columns[i] = (packed[i >> 1] >> (16 * (i & 1))) & 0xFFFF;
        }
    }

    /// <summary>Row r sets the bit of each of its entries (atomic OR: rows may share a word).</summary>
    [GpuKernel]
    internal static void BitmapFromCsrKernel(Index1D index, ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<int> bitmap,
        int rows, int cols, int stride)
    {
        int capacity = (int)columns.Length;
        for (int r = index; r < rows; r += stride)
        {
            int start = CsrKernels.ClampIndex(rowPointers[r], 0, capacity);
            int end = CsrKernels.ClampIndex(rowPointers[r + 1], start, capacity);
            for (int k = start; k < end; k++)
            {
                int c = columns[k];
                if ((uint)c < (uint)cols)
                {
                    long position = (long)r * cols + c;
                    Atomic.Or(ref bitmap[position >> 5], 1 << (int)(position & 31));
                }
            }
        }
    }

    /// <summary>prefix[c + 1] = set bits in chunk c (words [32c, 32c + 32)).</summary>
    [GpuKernel]
    internal static void ChunkCountsKernel(Index1D index, ArrayView<int> bitmap, ArrayView<int> prefix, int words, int chunks, int stride)
    {
        for (int c = index; c < chunks; c += stride)
        {
            int first = c * ChunkWords;
            int last = Math.Min(first + ChunkWords, words);
            int count = 0;
            for (int w = first; w < last; w++)
            {
                count += IntrinsicMath.PopCount(bitmap[w]);
            }
            prefix[c + 1] = count;
        }
    }

    /// <summary>One thread: prefix[c + 1] holds chunk c's count; writes the exclusive prefix in place (prefix[0] = 0), clamped to int.MaxValue.</summary>
    [GpuKernel]
    internal static void ScanChunksKernel(Index1D index, ArrayView<int> prefix, int chunks)
    {
        if (index != 0)
        {
            return;
        }
        long total = 0;
        prefix[0] = 0;
        for (int c = 0; c < chunks; c++)
        {
            total += prefix[c + 1];
            prefix[c + 1] = (int)(total < int.MaxValue ? total : int.MaxValue);
        }
    }

    /// <summary>Chunk c: its set bits, in order, take the values from prefix[c] on; positions at or past length and values past the view are skipped.</summary>
    [GpuKernel]
    internal static void BitmapScatterAddKernel(Index1D index, ArrayView<int> bitmap, ArrayView<int> prefix, ArrayView<float> values,
        ArrayView<float> dense, float weight, long length, int chunks, int stride)
    {
        int words = (int)bitmap.Length;
        long capacity = values.Length;
        for (int c = index; c < chunks; c += stride)
        {
            long j = prefix[c];
            int first = c * ChunkWords;
            int last = Math.Min(first + ChunkWords, words);
            for (int w = first; w < last; w++)
            {
                int bits = bitmap[w];
                while (bits != 0)
                {
                    long position = 32L * w + IntrinsicMath.TrailingZeroCount(bits);
                    bits &= bits - 1;
                    if (position < length && j >= 0 && j < capacity)
                    {
                        dense[position] += weight * values[j];
                    }
                    j++;
                }
            }
        }
    }
}
