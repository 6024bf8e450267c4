using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Kernels;

namespace ZeroFL.Engine.Sparsity;

/// <summary>
/// What one SWAT layer remembers between steps: the top-K thresholds of its weights and of its
/// input, reused for <see cref="SparsitySettings.TopKPeriod"/> training steps, and a step counter.
/// </summary>
public sealed class SparseLayerState : IDisposable
{
    private MemoryBuffer1D<int, Stride1D.Dense>? selectionStates;

    /// <summary>Creates the state of a layer under <paramref name="settings"/>.</summary>
    public SparseLayerState(SparsitySettings settings)
    {
        settings.Validate();
        Settings = settings;
    }

    /// <summary>The model-wide settings.</summary>
    public SparsitySettings Settings { get; }

    /// <summary>The weight threshold in use, if computed.</summary>
    public TopKSelection? WeightSelection { get; internal set; }

    /// <summary>The input threshold in use, if computed.</summary>
    public TopKSelection? InputSelection { get; internal set; }

    /// <summary>
    /// The most weight entries at or above the threshold in one row at the last encode: sizes the
    /// next encode's staging slot so that every row fits (see <see cref="EntryStaging.SlotFor"/>).
    /// </summary>
    public int LongestWeightRow { get; internal set; }

    /// <summary>The same for the input's compress: the most entries at or above its threshold in one chunk.</summary>
    public int LongestInputChunk { get; internal set; }

    /// <summary>Training steps seen.</summary>
    public long Steps { get; internal set; }

    /// <summary>True when this training step recomputes the exact thresholds.</summary>
    internal bool Refresh => Steps % Settings.TopKPeriod == 0 || WeightSelection is null || InputSelection is null;

    /// <summary>
    /// Where the weight (<paramref name="input"/> false) or input selection lives on the device
    /// (<see cref="TopKSelection.StateInts"/> ints of a small buffer this state owns, made on first
    /// use): a GPU selects into it and every kernel that applies the selection reads it there, so a
    /// step reads no threshold back, and a reused selection stays valid between steps.
    /// </summary>
    internal ArrayView<int> SelectionState(Accelerator accelerator, bool input)
    {
        if (selectionStates is null || selectionStates.Accelerator != accelerator)
        {
            selectionStates?.Dispose();
            WeightSelection = null;
            InputSelection = null;
            selectionStates = accelerator.Allocate1D<int>(2 * TopKSelection.StateInts);
        }
        return selectionStates.View.SubView(input ? TopKSelection.StateInts : 0, TopKSelection.StateInts);
    }

    /// <summary>Frees the device buffer of the selections.</summary>
    public void Dispose()
    {
        selectionStates?.Dispose();
        selectionStates = null;
        WeightSelection = null;
        InputSelection = null;
    }

    /// <summary>Forgets the thresholds, so the next step computes them exactly (e.g. when a new client starts).</summary>
    public void Reset()
    {
        WeightSelection = null;
        InputSelection = null;
        LongestWeightRow = 0;
        LongestInputChunk = 0;
        Steps = 0;
    }
}
