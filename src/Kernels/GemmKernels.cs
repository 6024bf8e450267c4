using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Dense single-precision matrix multiply, <c>C = alpha * op(A) * op(B) + beta * C</c>, row-major.
/// On the CPU accelerator a packed, cache-blocked SIMD GEMM runs in each of the launched threads
/// (one per core, see <see cref="PackedGemm"/>); on CUDA/OpenCL a shared-memory tiled kernel runs
/// (64x64 tiles, 256 threads per group, 4x4 outputs per thread). Both read their operands through
/// index maps, which is how <see cref="Conv2dKernels"/> runs convolutions as implicit GEMMs without
/// an im2col buffer. CPU reference: <see cref="Reference.GemmReference"/>.
/// </summary>
public sealed class GemmKernels
{
    /// <summary>Threads per group of the GPU tiled kernel.</summary>
    internal const int TiledGroupSize = 256;

    private const int Tile = 64;
    private const int TileK = 16;

    private readonly KernelLaunch launch;
    private readonly bool tiled;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmProblem, int> packed = null!;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmProblem> tiledKernel = null!;

    /// <summary>Loads the GEMM kernel variant suited to the accelerator of <paramref name="launch"/>.</summary>
    public GemmKernels(KernelLaunch launch)
        : this(launch, forceTiled: false)
    {
    }

    /// <summary>
    /// Test hook: <paramref name="forceTiled"/> runs the GPU tiled kernel even on the CPU accelerator
    /// (which must then allow <see cref="TiledGroupSize"/> threads per group).
    /// </summary>
    internal GemmKernels(KernelLaunch launch, bool forceTiled)
    {
        this.launch = launch;
        tiled = forceTiled || !launch.IsCpu;
        var accelerator = launch.Accelerator;
        if (tiled)
        {
            if (accelerator.MaxNumThreadsPerGroup < TiledGroupSize)
            {
                throw new ArgumentException($"the tiled GEMM needs {TiledGroupSize} threads per group; {accelerator.Name} allows {accelerator.MaxNumThreadsPerGroup}");
            }
            tiledKernel = launch.LoadGrouped<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmProblem>(GemmTiledKernel);
        }
        else
        {
            packed = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmProblem, int>(
                GemmPackedKernel);
        }
    }

    /// <summary>
    /// Row-major <c>C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C[m, n]</c>, op(X) = X or X^T.
    /// A is [m, k] (lda &gt;= k) or, if <paramref name="transA"/>, [k, m] (lda &gt;= m); B is [k, n]
    /// (ldb &gt;= n) or, if <paramref name="transB"/>, [n, k] (ldb &gt;= k); C is [m, n] (ldc &gt;= n).
    /// beta = 0 overwrites C without reading it (NaN garbage in C is fine). m, n, k must be positive;
    /// C must not overlap A or B. Every length is checked on the host (ArgumentException).
    /// </summary>
    public void Run(bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, ArrayView<float> b, int ldb, float beta, ArrayView<float> c, int ldc)
    {
        HostCheck.Positive(m, "gemm m");
        HostCheck.Positive(n, "gemm n");
        HostCheck.Positive(k, "gemm k");
        CheckMatrix(a, transA ? k : m, transA ? m : k, lda, "gemm A");
        CheckMatrix(b, transB ? n : k, transB ? k : n, ldb, "gemm B");
        CheckMatrix(c, m, n, ldc, "gemm C");
        var problem = new GemmProblem(m, n, k, alpha, beta,
            GatherMatrix.Dense(transA, lda), GatherMatrix.Dense(transB, ldb), ScatterMatrix.Dense(ldc));
        RunMapped(problem, a, b, c);
    }

    /// <summary>
    /// Runs a GEMM whose operands are described by index maps. The caller (this class or
    /// <see cref="Conv2dKernels"/>) has checked that every mapped element lies inside its view.
    /// </summary>
    internal void RunMapped(GemmProblem problem, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        if (tiled)
        {
            long tiles = (long)((problem.M + Tile - 1) / Tile) * ((problem.N + Tile - 1) / Tile);
            long maxGroups = Math.Max(1, launch.MaxThreads / TiledGroupSize);
            int groups = (int)Math.Min(tiles, maxGroups);
            tiledKernel(new KernelConfig(groups, TiledGroupSize), a, b, c, problem);
        }
        else
        {
            long microTiles = (long)((problem.M + PackedGemm.MR - 1) / PackedGemm.MR) * ((problem.N + PackedGemm.NR - 1) / PackedGemm.NR);
            int threads = launch.Threads(microTiles);
            packed(threads, a, b, c, problem, threads);
        }
    }

    private static void CheckMatrix(ArrayView<float> view, int rows, int cols, int ld, string what)
    {
        if (ld < cols)
        {
            throw new ArgumentException($"{what}: leading dimension {ld} is smaller than the row width {cols}");
        }
        long needed = (long)(rows - 1) * ld + cols;
        HostCheck.Count(needed, what);
        HostCheck.Length(view, needed, what);
    }

    /// <summary>CPU accelerator: thread <c>index</c> of <c>stride</c> runs the packed SIMD GEMM on its share of C.</summary>
    [CpuKernel]
    internal static void GemmPackedKernel(Index1D index, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmProblem p, int stride)
    {
        PackedGemm.RunSlice(index, stride, a, b, c, p);
    }

    /// <summary>
    /// GPU: each group of 256 threads computes 64x64 tiles of C (grid-stride over tiles), staging
    /// 64x16 slices of A and 16x64 slices of B in shared memory; each thread owns a 4x4 block of
    /// outputs strided by 16 so that shared-memory reads do not conflict. Explicitly grouped
    /// (ILGPU allows shared memory only there): launched with <see cref="TiledGroupSize"/> threads
    /// per group.
    /// </summary>
    [GpuKernel]
    internal static void GemmTiledKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmProblem p)
    {
        var tileA = SharedMemory.Allocate<float>(TileK * Tile);
        var tileB = SharedMemory.Allocate<float>(TileK * Tile);
        int lid = Group.IdxX;
        int tx = lid % 16;
        int ty = lid / 16;
        int tilesN = (p.N + Tile - 1) / Tile;
        int tiles = (p.M + Tile - 1) / Tile * tilesN;
        for (int t = Grid.IdxX; t < tiles; t += Grid.DimX)
        {
            int row0 = t / tilesN * Tile;
            int col0 = t % tilesN * Tile;
            float acc00 = 0f, acc01 = 0f, acc02 = 0f, acc03 = 0f;
            float acc10 = 0f, acc11 = 0f, acc12 = 0f, acc13 = 0f;
            float acc20 = 0f, acc21 = 0f, acc22 = 0f, acc23 = 0f;
            float acc30 = 0f, acc31 = 0f, acc32 = 0f, acc33 = 0f;
            for (int k0 = 0; k0 < p.K; k0 += TileK)
            {
                for (int e = lid; e < TileK * Tile; e += TiledGroupSize)
                {
                    int kk = e % TileK;
                    int r = e / TileK;
                    int row = row0 + r;
                    int kA = k0 + kk;
                    tileA[kk * Tile + r] = row < p.M && kA < p.K ? p.A.Load(a, row, kA) : 0f;
                    int col = e % Tile;
                    int kB = k0 + e / Tile;
                    int colAbs = col0 + col;
                    tileB[e] = colAbs < p.N && kB < p.K ? p.B.Load(b, kB, colAbs) : 0f;
                }
                Group.Barrier();
                for (int kk = 0; kk < TileK; kk++)
                {
                    float a0 = tileA[kk * Tile + ty];
                    float a1 = tileA[kk * Tile + ty + 16];
                    float a2 = tileA[kk * Tile + ty + 32];
                    float a3 = tileA[kk * Tile + ty + 48];
                    float b0 = tileB[kk * Tile + tx];
                    float b1 = tileB[kk * Tile + tx + 16];
                    float b2 = tileB[kk * Tile + tx + 32];
                    float b3 = tileB[kk * Tile + tx + 48];
                    acc00 += a0 * b0; acc01 += a0 * b1; acc02 += a0 * b2; acc03 += a0 * b3;
                    acc10 += a1 * b0; acc11 += a1 * b1; acc12 += a1 * b2; acc13 += a1 * b3;
                    acc20 += a2 * b0; acc21 += a2 * b1; acc22 += a2 * b2; acc23 += a2 * b3;
                    acc30 += a3 * b0; acc31 += a3 * b1; acc32 += a3 * b2; acc33 += a3 * b3;
                }
                Group.Barrier();
            }
            int i0 = row0 + ty;
            int j0 = col0 + tx;
            StoreTiled(c, p, i0, j0, acc00, acc01, acc02, acc03);
            StoreTiled(c, p, i0 + 16, j0, acc10, acc11, acc12, acc13);
            StoreTiled(c, p, i0 + 32, j0, acc20, acc21, acc22, acc23);
            StoreTiled(c, p, i0 + 48, j0, acc30, acc31, acc32, acc33);
        }
    }

    /// <summary>Writes one row of a thread's 4x4 block: columns j, j+16, j+32, j+48.</summary>
    private static void StoreTiled(ArrayView<float> c, GemmProblem p, int i, int j, float v0, float v1, float v2, float v3)
    {
        if (i >= p.M)
        {
            return;
        }
        int rowOffset = p.C.Rows.Decode(i).Offset;
        StoreOne(c, p, rowOffset, j, v0);
        StoreOne(c, p, rowOffset, j + 16, v1);
        StoreOne(c, p, rowOffset, j + 32, v2);
        StoreOne(c, p, rowOffset, j + 48, v3);
    }

    private static void StoreOne(ArrayView<float> c, GemmProblem p, int rowOffset, int j, float sum)
    {
        if (j >= p.N)
        {
            return;
        }
        int offset = rowOffset + p.C.Cols.Decode(j).Offset;
        float value = p.Alpha * sum;
        c[offset] = p.Beta == 0f ? value : value + p.Beta * c[offset];
    }
}
