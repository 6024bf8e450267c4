namespace ZeroFL.Kernels;

/// <summary>
/// The CPU-accelerator sparse convolutions: SIMD code run as plain .NET code by each launched
/// thread (one per core) of the <see cref="CpuKernelAttribute"/> kernels of
/// <see cref="SparseConvKernels"/>; never compiled for GPU backends, which run their own gathers.
/// <para>
/// Forward and backward input are one "gather" engine. The dense operand (x, or dy) is first packed
/// (<see cref="Pack"/>, its own launch) so that every kept weight is a constant shift in packed
/// memory (see <see cref="SparseConvPlan"/>). Each output row (an output channel, or an input
/// channel for backward input) holds a list of (shift, weight) pairs, one per kept weight (per
/// output phase for strided backward input); each thread owns a range of rows balanced by kept
/// weights. For each pair of 32-position runs (<see cref="SparseConvStrips"/>) and each owned row,
/// <see cref="Dot8"/> keeps 8 Vector256 accumulators in registers and, per kept weight, does 8 loads
/// and 8 FMAs; then the 64 results are stored (8-wide where the lanes are consecutive outputs; for
/// stride 2, the two column phases interleaved into 16 consecutive floats). With more source
/// channels than fit L1 (a strided forward's window takes a channel's phase planes together), a
/// pair of runs is blocked: rows in blocks of 64 / phases (their sums kept in a 16 KB tile) and
/// source channels in windows whose operand slice (~32 KB) every list of the block reads before the
/// next window (<see cref="RunPairBlocked"/>; the same sums in the same order).
/// Runs along image rows go image-major where one image's packed operand fits L2
/// (<see cref="SparseConvPlan.Images"/>): threads take units of the (image, pair of runs) work
/// from a shared counter, for every row, and pack each unit's image into a thread-local buffer
/// (<see cref="GatherByImage"/>), so the scattered taps read L2, not a batch-sized packed copy in
/// memory, and a thread slowed down by another process takes fewer units.
/// Cost: kept weights x outputs / 8 FMAs, plus one pass over the operand to pack it.
/// </para>
/// <para>
/// Backward weight transposes dy to [batch, outH, outW, Cout] (<see cref="PackTransposed"/>), then
/// each thread owns a range of input channels balanced by kept activations (found by binary search
/// in the increasing indices), processed in blocks of channels (their dw columns accumulate in L2)
/// and blocks of images (their dy rows stay in L2). Interior activations of a channel are bucketed
/// by position class so that one list serves every tap with a constant shift; border ones get
/// per-tap lists. <see cref="Dot8"/> sums each list over 64 output channels at a time; the block is
/// then added into dw transposed. Where one image's transposed dy and a whole dw fit L2 together,
/// backward weight goes image-major instead (<see cref="BackwardWeightByImage"/>): threads own
/// images, transpose each into a thread-local buffer and accumulate every channel into a private dw
/// copy, which <see cref="ReduceCopies"/> sums. Cost: kept activations x taps x Cout / 8 FMAs.
/// </para>
/// <para>
/// Linear layers (1x1 kernel on 1x1 images) differ where the batch is the only spatial extent:
/// backward input scatters w * dy[:, co] (held in registers) into per-thread private dx copies that
/// <see cref="ReduceCopies"/> sums; backward weight runs output-channel major so that dw (dense,
/// usually far larger than the kept activations) is streamed once.
/// </para>
/// Device index arrays are read clamp-protected: row ranges clamped to the capacity, columns and
/// activation indices outside their range skipped. Per-thread tables (runs, column shifts, position
/// classes) are cached per plan in thread-local pinned arrays; per-call lists grow on demand.
/// </summary>
internal static unsafe partial class SparseConvCpu
{
    /// <summary>Cost of an output row beyond its kept weights, in FMAs (its stores), for balancing threads.</summary>
    private const int RowCost = 8;

    /// <summary>
    /// Rows per block of the channel-blocked gather (their sums, 256 bytes each, stay in L1 or
    /// next to it). 64 measured 1-3% faster than 32 on the ResNet-18 layers, 16 slower, 128 the same.
    /// </summary>
    private const int BlockRows = 64;

    /// <summary>Backward weight: floats of the per-thread dw column block (kept in L2).</summary>
    private const int AccumulatorFloats = 64 * 1024;

    /// <summary>Backward weight: floats of transposed dy per block of images (kept in L2).</summary>
    private const int ImageBlockFloats = 64 * 1024;

    [ThreadStatic]
    private static Workspace? workspace;
}
