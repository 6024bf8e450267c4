using ILGPU;
using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Profiling;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Kernels;

namespace ZeroFL.Engine.Ops;

public static partial class Ops
{
    /// <summary>
    /// SWAT convolution (same shapes as <see cref="Conv2d"/>): the forward uses only the top-K weights
    /// by magnitude; the input kept for the weight gradient is its own top-K over the whole batch,
    /// stored as values and 16-bit block-local indices (<see cref="IndexPackKernels"/>, about 6 bytes
    /// per kept entry); dx = G(dy, W_topK) and dw = H(dy, X_topK) are dense.
    /// </summary>
    public static Tensor SwatConv2d(Tape tape, Tensor x, Tensor w, Tensor? bias, int stride, int padding, SparseLayerState state)
    {
        if (x.Shape.Length != 4 || w.Shape.Length != 4 || x.Dim(1) != w.Dim(1))
        {
            throw new ArgumentException($"sparse conv2d expects input [batch, channels, h, w] and weight [out, channels, kh, kw], got {x} and {w}");
        }
        var g = new ConvGeometry(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), w.Dim(0), w.Dim(2), w.Dim(3), stride, padding);
        return SwatLayer(tape, x, w, bias, g, [g.Batch, g.OutChannels, g.OutHeight, g.OutWidth], "conv", state);
    }

    /// <summary>SWAT linear layer (same shapes as <see cref="Linear"/>), run as a 1x1 convolution over 1x1 images.</summary>
    public static Tensor SwatLinear(Tape tape, Tensor x, Tensor w, Tensor? bias, SparseLayerState state)
    {
        if (x.Shape.Length != 2 || w.Shape.Length != 2 || x.Dim(1) != w.Dim(1))
        {
            throw new ArgumentException($"sparse linear expects input [batch, in] and weight [out, in], got {x} and {w}");
        }
        var g = new ConvGeometry(x.Dim(0), x.Dim(1), 1, 1, w.Dim(0), 1, 1, 1, 0);
        return SwatLayer(tape, x, w, bias, g, [x.Dim(0), w.Dim(0)], "linear", state);
    }

    private static Tensor SwatLayer(Tape tape, Tensor x, Tensor w, Tensor? bias, ConvGeometry g, int[] outputShape, string kind, SparseLayerState state)
    {
        g.Validate();
        if (bias is not null && bias.Length != g.OutChannels)
        {
            throw new ArgumentException($"sparse {kind}: bias has {bias.Length} elements, weight has {g.OutChannels} outputs");
        }
        var k = tape.Kernels;
        var workspace = tape.Workspace;
        var settings = state.Settings;
        bool training = tape.Training;
        // A recomputed forward (Tape.Checkpoint) uses the weights its first forward selected.
        bool refresh = !training || (state.Refresh && !tape.Recomputing);
        var row = ProfileRow(tape, kind);
        bool gradFlows = training && (x.RequiresGrad || w.RequiresGrad || (bias?.RequiresGrad ?? false));
        var y = tape.NewTensor(outputShape, gradFlows);
        // Whether this forward records its backward (not the first forward of a recomputed segment).
        bool needsGrad = gradFlows && tape.Recording;
        // Used only inside this forward, so a reusable buffer rather than a per-layer arena block.
        var topKScratch = workspace.TopKScratch(k.TopK.ScratchLength(Math.Max(w.Length, x.Length)));
        bool sparseKernels = settings.Density <= settings.SparseKernelMaxDensity;
        ArrayView<int> rowPointers = default, columns = default;
        ArrayView<float> values = default, wMasked = default, xValues = default;
        ArrayView<int> xPacked = default, xTable = default;
        int nonZeros, xCount = 0;
        long retainedBytes = 0;
        var topKRow = ProfileRow(tape, OpKinds.TopK);
        using (Measure(tape, topKRow, Pass.Forward))
        {
            // W_topK: an exact threshold when refreshing (always when evaluating), else the saved one.
            var saved = refresh ? null : state.WeightSelection;
            var selection = saved ?? k.TopK.Select(w.Data, settings.KeepCount(w.Length), topKScratch,
                state.SelectionState(tape.Device.Accelerator, input: false));
            if (training)
            {
                state.WeightSelection = selection;
            }
            if (sparseKernels)
            {
                // CSR straight from w under the selection: no masked dense copy. A selection made on
                // w keeps exactly K, so a GPU plans it on the device without reading a count back.
                int longestRow = state.LongestWeightRow;
                var csr = k.Csr.EncodeTopK(w.Data, selection, g.OutChannels, g.GemmK, saved is null ? selection.Kept : -1, workspace, ref longestRow);
                state.LongestWeightRow = longestRow;
                (rowPointers, columns, values, nonZeros) = csr;
            }
            else
            {
                wMasked = workspace.Floats.Allocate(w.Length);
                k.TopK.Mask(w.Data, selection, wMasked, topKScratch);
                nonZeros = refresh ? selection.Kept : k.TopK.CountKept(w.Data, selection, topKScratch);
            }
        }
        using (Measure(tape, row, Pass.Forward))
        {
            if (sparseKernels)
            {
                k.SparseConv.Forward(g, x.Data, rowPointers, columns, values, y.Data, workspace.Scratch(k.SparseConv.ScratchLength(g)));
            }
            else
            {
                k.Conv.Forward(g, x.Data, wMasked, y.Data, workspace.Scratch(k.Conv.WorkspaceLength(g)));
            }
            if (bias is not null)
            {
                k.Activation.BiasForward(y.Data, bias.Data, g.Batch, g.OutChannels, g.OutHeight * g.OutWidth);
            }
        }

        // X_topK: the only copy of the input kept for the weight gradient (part of this layer's top-K cost).
        if (needsGrad && w.RequiresGrad)
        {
            using (Measure(tape, topKRow, Pass.Forward))
            {
                var savedInput = state.Refresh ? null : state.InputSelection;
                var inputSelection = savedInput ?? k.TopK.Select(x.Data, settings.KeepCount(x.Length), topKScratch,
                    state.SelectionState(tape.Device.Accelerator, input: true));
                state.InputSelection = inputSelection;
                // Full indices only in a reusable scratch; what is kept is their 16-bit block-local form.
                int longestChunk = state.LongestInputChunk;
                var kept = k.TopK.CompressTopK(x.Data, inputSelection, savedInput is null ? inputSelection.Kept : -1, topKScratch, workspace, ref longestChunk);
                state.LongestInputChunk = longestChunk;
                (xValues, var xIndices, xCount) = kept;
                long packedLength = IndexPackKernels.PackedLength(xCount), tableLength = IndexPackKernels.TableLength(x.Length);
                xPacked = workspace.Ints.Allocate(Math.Max(1, packedLength));
                xTable = workspace.Ints.Allocate(tableLength);
                k.IndexPack.Pack(xIndices, xCount, x.Length, xPacked, xTable);
                retainedBytes = (long)xCount * sizeof(float) + (packedLength + tableLength) * sizeof(int);
            }
        }
        double dense = g.ForwardFlops;
        double weightDensity = (double)nonZeros / w.Length;
        CountFlops(tape, row, Pass.Forward, dense, dense * weightDensity);
        if (row is not null)
        {
            row.Sparse = true;
            row.SparseKernels = sparseKernels;
        }
        if (!needsGrad)
        {
            // Evaluation (or a forward to be recomputed): the forward was the only reader of the weights' sparse form.
            Keep(tape.Record(null, static () => { }), sparseKernels, rowPointers, columns, values, wMasked, default, default, default);
            return y;
        }

        state.Steps++;
        if (row is not null)
        {
            row.Steps++;
            tape.Profiler!.Retain(row, new object(), retainedBytes, x.Length * sizeof(float));
        }

        var record = tape.Record(y, () =>
        {
            if (!y.HasGrad)
            {
                return;
            }
            if (w.RequiresGrad)
            {
                var xIndices = workspace.IntScratch(Math.Max(1, xCount));
                using (Measure(tape, topKRow, Pass.Backward))
                {
                    k.IndexPack.Expand(xPacked, xTable, xCount, x.Length, xIndices);
                }
                using (Measure(tape, row, Pass.BackwardWeight))
                {
                    if (sparseKernels)
                    {
                        k.SparseConv.BackwardWeight(g, y.Grad, xValues, xIndices, xCount, tape.GradOf(w), workspace.Scratch(k.SparseConv.ScratchLength(g)));
                    }
                    else
                    {
                        var xDense = workspace.Floats.Allocate(x.Length);
                        k.Gather.Scatter(xValues, xIndices, xCount, xDense);
                        k.Conv.BackwardWeight(g, y.Grad, xDense, tape.GradOf(w), workspace.Scratch(k.Conv.WorkspaceLength(g)));
                        tape.Discard(xDense);
                    }
                }
                CountFlops(tape, row, Pass.BackwardWeight, dense, dense * xCount / x.Length);
            }
            if (bias is not null && bias.RequiresGrad)
            {
                using (Measure(tape, row, Pass.BackwardWeight))
                {
                    k.Activation.BiasBackward(y.Grad, tape.GradOf(bias), g.Batch, g.OutChannels, g.OutHeight * g.OutWidth);
                }
            }
            if (x.RequiresGrad)
            {
                using (Measure(tape, row, Pass.BackwardInput))
                {
                    // The first gradient of x (e.g. a block's second conv) is written, not added.
                    var dx = tape.GradToWrite(x, out bool overwrite);
                    if (sparseKernels)
                    {
                        k.SparseConv.BackwardInput(g, y.Grad, rowPointers, columns, values, dx, workspace.Scratch(k.SparseConv.ScratchLength(g)), overwrite);
                    }
                    else
                    {
                        k.Conv.BackwardInput(g, y.Grad, wMasked, dx, workspace.Scratch(k.Conv.WorkspaceLength(g)), overwrite);
                    }
                }
                CountFlops(tape, row, Pass.BackwardInput, dense, dense * weightDensity);
            }
        });
        // The weights' sparse form (for dx) and the compressed input (for dw) live until this backward ran.
        Keep(record, sparseKernels, rowPointers, columns, values, wMasked, xValues, xPacked, xTable);
        return y;
    }

    /// <summary>
    /// Hands a SWAT layer's step buffers to its record: the CSR weights or the masked dense ones, and
    /// the compressed input when it was kept (valid views only).
    /// </summary>
    private static void Keep(BackwardRecord record, bool sparseKernels, ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values,
        ArrayView<float> wMasked, ArrayView<float> xValues, ArrayView<int> xPacked, ArrayView<int> xTable)
    {
        if (sparseKernels)
        {
            record.Keeps(rowPointers).Keeps(columns).Keeps(values);
        }
        else
        {
            record.Keeps(wMasked);
        }
        if (xPacked.IsValid)
        {
            record.Keeps(xValues).Keeps(xPacked).Keeps(xTable);
        }
    }
}
