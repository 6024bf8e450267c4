using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class CsrKernelTests(string device) : DeviceTest(device)
{
    /// <summary>Random sparse, empty rows, all zero, full, a single row, a single column.</summary>
    public static IEnumerable<TestCaseData> Matrices()
    {
        yield return Case("random 10%", 17, 23, (r, c, random) => random.NextDouble() < 0.1);
        yield return Case("random 50%", 40, 9, (r, c, random) => random.NextDouble() < 0.5);
        yield return Case("empty rows", 12, 30, (r, c, random) => r % 3 != 1 && random.NextDouble() < 0.3);
        yield return Case("all zero", 8, 8, (r, c, random) => false);
        yield return Case("full", 7, 13, (r, c, random) => true);
        yield return Case("one row", 1, 50, (r, c, random) => random.NextDouble() < 0.2);
        yield return Case("one column", 33, 1, (r, c, random) => random.NextDouble() < 0.5);
    }

    [TestCaseSource(nameof(Matrices))]
    public void EncodeMatchesReferenceAndRoundTripsExactly(int rows, int cols, float[] dense)
    {
        var csr = Device.Kernels.Csr;
        var expected = CsrReference.Encode(dense, rows, cols);
        int capacity = expected.Values.Length + 3;
        var rowPointers = Upload(new int[rows + 1]);
        var columns = Upload(Enumerable.Repeat(-7, capacity).ToArray());
        var values = Upload(Enumerable.Repeat(float.NaN, capacity).ToArray());

        var source = Upload(dense);
        var before = Device.Traffic.Snapshot();
        int nonZeros = csr.Encode(source, rows, cols, rowPointers, columns, values);
        if (!Device.IsCpu)
        {
            Assert.That((Device.Traffic.Syncs - before.Syncs, Device.Traffic.DeviceToHostBytes - before.DeviceToHostBytes), Is.EqualTo((1L, 4L)),
                "a GPU backend scans on the device and reads only the total");
        }

        Assert.That(nonZeros, Is.EqualTo(expected.Values.Length));
        Assert.That(rowPointers.Download(Device), Is.EqualTo(expected.RowPointers));
        Assert.That(columns.SubView(0, nonZeros).Download(Device), Is.EqualTo(expected.Columns));
        Assert.That(Download(values.SubView(0, nonZeros)), Is.EqualTo(expected.Values));
        Assert.That(columns.SubView(nonZeros, 3).Download(Device), Is.All.EqualTo(-7), "nothing written past the non-zeros");

        var decoded = Upload(Enumerable.Repeat(float.NaN, rows * cols).ToArray());
        csr.Decode(rowPointers, columns.SubView(0, nonZeros), values.SubView(0, nonZeros), rows, cols, decoded);
        Assert.That(Download(decoded), Is.EqualTo(dense), "decode(encode(m)) == m");
        Assert.That(CsrReference.Decode(expected.RowPointers, expected.Columns, expected.Values, rows, cols), Is.EqualTo(dense));
    }

    [TestCaseSource(nameof(Matrices))]
    public void ScatterAddMatchesReference(int rows, int cols, float[] dense)
    {
        var csr = CsrReference.Encode(dense, rows, cols);
        var start = Numerics.Random(rows * cols, 5);
        var expected = (float[])start.Clone();
        CsrReference.ScatterAdd(csr.RowPointers, csr.Columns, csr.Values, 0.375f, rows, cols, expected);
        var target = Upload(start);
        Device.Kernels.Csr.ScatterAdd(Upload(csr.RowPointers), Upload(Pad(csr.Columns)), Upload(Pad(csr.Values)), 0.375f, rows, cols, target);
        Assert.That(Download(target), Is.EqualTo(expected));
    }

    [TestCaseSource(nameof(Matrices))]
    public void GatherTakesAnotherMatrixsValuesAtTheEntries(int rows, int cols, float[] dense)
    {
        var csr = CsrReference.Encode(dense, rows, cols);
        var other = Numerics.Random(rows * cols, 6);
        var expected = Pad((float[])csr.Values.Clone());
        CsrReference.Gather(other, rows, cols, csr.RowPointers, csr.Columns, expected);
        var values = Upload(Pad(csr.Values));
        Device.Kernels.Csr.Gather(Upload(other), rows, cols, Upload(csr.RowPointers), Upload(Pad(csr.Columns)), values);
        Assert.That(Download(values), Is.EqualTo(expected));
        for (int j = 0; j < csr.Values.Length; j++)
        {
            Assert.That(expected[j], Is.Not.EqualTo(csr.Values[j]), "the reference took the other matrix's values");
        }
    }

    [Test]
    public void ByteSizeIsValuesColumnsAndRowPointers()
    {
        Assert.That(CsrKernels.ByteSize(64, 0), Is.EqualTo(4 * 65));
        Assert.That(CsrKernels.ByteSize(64, 3686), Is.EqualTo(3686 * 8 + 65 * 4));
        Assert.That(CsrKernels.ByteSize(2048, 321_126L), Is.EqualTo(321_126L * 4 + 321_126L * 4 + 2049L * 4));
        var dense = Numerics.Random(30 * 20, 3);
        for (int i = 0; i < dense.Length; i += 3)
        {
            dense[i] = 0f;
        }
        var reference = CsrReference.Encode(dense, 30, 20);
        long bytes = reference.RowPointers.Length * 4L + reference.Columns.Length * 4L + reference.Values.Length * 4L;
        Assert.That(CsrKernels.ByteSize(30, reference.Values.Length), Is.EqualTo(bytes));
        Assert.Throws<ArgumentException>(() => CsrKernels.ByteSize(-1, 3));
    }

    [Test]
    public void EncodeRejectsTooSmallCapacityBeforeWriting()
    {
        var csr = Device.Kernels.Csr;
        var dense = Numerics.Random(6 * 5, 8);
        var rowPointers = Upload(new int[7]);
        var columns = Upload(Enumerable.Repeat(-1, 29).ToArray());
        var values = Upload(Enumerable.Repeat(-5f, 30).ToArray());
        var ex = Assert.Throws<ArgumentException>(() => csr.Encode(Upload(dense), 6, 5, rowPointers, columns, values));
        Assert.That(ex!.Message, Does.Contain("30 non-zeros"));
        Assert.That(columns.Download(Device), Is.All.EqualTo(-1));
        Assert.That(Download(values), Is.All.EqualTo(-5f));

        Assert.Throws<ArgumentException>(() => csr.Encode(Upload(dense), 6, 5, rowPointers, Upload(new int[30]), Upload(new float[29])));
        Assert.That(csr.Encode(Upload(dense), 6, 5, rowPointers, Upload(new int[30]), Upload(new float[30])), Is.EqualTo(30));
    }

    [Test]
    public void ShapeErrorsAreRejectedOnTheHost()
    {
        var csr = Device.Kernels.Csr;
        var dense = Upload(new float[12]);
        var rowPointers = Upload(new int[5]);
        var columns = Upload(new int[12]);
        var values = Upload(new float[12]);
        Assert.Throws<ArgumentException>(() => csr.Encode(dense, 4, 4, rowPointers, columns, values), "dense too short");
        Assert.Throws<ArgumentException>(() => csr.Encode(dense, 4, 3, rowPointers.SubView(0, 4), columns, values), "row pointers too short");
        Assert.Throws<ArgumentException>(() => csr.Encode(dense, 0, 3, rowPointers, columns, values));
        Assert.Throws<ArgumentException>(() => csr.Decode(rowPointers, columns, values, 4, 4, dense));
        Assert.Throws<ArgumentException>(() => csr.Decode(rowPointers.SubView(0, 3), columns, values, 4, 3, dense));
        Assert.Throws<ArgumentException>(() => csr.ScatterAdd(rowPointers, columns, values, 1f, 4, 3, dense.SubView(0, 11)));
        Assert.Throws<ArgumentException>(() => csr.ScatterAdd(rowPointers, columns, values, 1f, 4, -3, dense));
    }

    /// <summary>Malformed CSR (as an untrusted upload could be) is clamp-protected: no crash, bad entries ignored.</summary>
    [Test]
    public void MalformedIndicesAreSkippedNotFollowed()
    {
        var csr = Device.Kernels.Csr;
        const int rows = 4;
        const int cols = 5;
        // Row 0: entries 0..1, the second column out of range; row 1: pointers go backwards (empty);
        // row 2: starts at 1, ends at -9 (empty); row 3: starts at -9 (clamped to 0), ends at 4.
        int[] rowPointers = [0, 2, 1, -9, 4];
        int[] columns = [1, 77, -3, 4];
        float[] values = [1f, 2f, 3f, 4f];
        var expected = new float[rows * cols];
        expected[0 * cols + 1] = 1f;
        expected[3 * cols + 1] = 1f;
        expected[3 * cols + 4] = 4f;
        var dense = Upload(Enumerable.Repeat(9f, rows * cols).ToArray());
        csr.Decode(Upload(rowPointers), Upload(columns), Upload(values), rows, cols, dense);
        Assert.That(Download(dense), Is.EqualTo(expected));

        int[] wild = [-100, 1000, int.MinValue, int.MaxValue, 3];
        var sum = Upload(new float[rows * cols]);
        Assert.DoesNotThrow(() => csr.ScatterAdd(Upload(wild), Upload(columns), Upload(values), 1f, rows, cols, sum));
        Assert.DoesNotThrow(() => csr.Decode(Upload(wild), Upload(columns), Upload(values), rows, cols, sum));
        var gathered = Upload(values);
        Assert.DoesNotThrow(() => csr.Gather(sum, rows, cols, Upload(wild), Upload(columns), gathered));
        csr.Gather(Upload(Enumerable.Range(0, rows * cols).Select(i => (float)i).ToArray()), rows, cols, Upload(rowPointers), Upload(columns), gathered);
        // Entry 0 lies in rows 0 and 3 (row 3's start is clamped to 0): either row may write it last.
        var got = Download(gathered);
        Assert.That(got[0], Is.EqualTo(0f * cols + 1).Or.EqualTo(3f * cols + 1), "entry 0 takes row 0's or row 3's value");
        Assert.That(got[1..], Is.EqualTo(new[] { 2f, 3f, 3f * cols + 4 }), "out-of-range columns keep their value");
    }

    /// <summary>
    /// Encoding a top-K selection straight from the matrix gives, row by row, exactly the entries the
    /// sort-based reference keeps (ties across rows: the first in row-major order; kept zeros are
    /// explicit entries), for a fresh selection and under threshold reuse on a changed matrix.
    /// </summary>
    [TestCase(17, 23, 0.1f, false)]
    [TestCase(40, 9, 0.5f, false)]
    [TestCase(64, 576, 0.1f, false)]
    [TestCase(8, 8, 1f, false)]
    [TestCase(1, 50, 0.02f, false)]
    [TestCase(33, 1, 0.3f, true)]
    [TestCase(12, 30, 0.25f, true)]
    [TestCase(64, 576, 0.05f, true)]
    public void EncodeSelectedKeepsExactlyTheTopK(int rows, int cols, float fraction, bool tiedAndZeros)
    {
        var csr = Device.Kernels.Csr;
        var topK = Device.Kernels.TopK;
        var random = new Random(rows * 7 + cols);
        // Tied and zero-heavy values put the threshold on a tie shared by several rows (or on 0).
        float Draw() => tiedAndZeros ? random.Next(-3, 4) * 0.5f : (float)(random.NextDouble() * 2 - 1);
        var dense = Enumerable.Range(0, rows * cols).Select(_ => Draw()).ToArray();
        var scratch = Upload(new int[topK.ScratchLength(dense.Length)]);
        var selection = topK.Select(Upload(dense), TopKKernels.CountFor(dense.Length, fraction), scratch);
        var changed = dense.Select(v => random.NextDouble() < 0.3 ? Draw() : v).ToArray();

        foreach (var (name, matrix) in new[] { ("fresh", dense), ("threshold reuse", changed) })
        {
            var kept = TopKReference.ApplyThreshold(matrix, selection.ThresholdBits, selection.TiesToKeep);
            var expectedPointers = new int[rows + 1];
            var expectedColumns = new List<int>();
            var expectedValues = new List<float>();
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < cols; c++)
                {
                    if (kept[r * cols + c])
                    {
                        expectedColumns.Add(c);
                        expectedValues.Add(matrix[r * cols + c]);
                    }
                }
                expectedPointers[r + 1] = expectedColumns.Count;
            }
            var source = Upload(matrix);
            var rowPointers = Upload(Enumerable.Repeat(-3, rows + 1).ToArray());
            var rowTies = Upload(new int[rows]);
            int planned = csr.PlanSelected(source, selection, rows, cols, rowPointers, rowTies);
            Assert.That(planned, Is.EqualTo(expectedColumns.Count), name);
            var columns = Upload(Enumerable.Repeat(-7, planned + 9).ToArray());
            var values = Upload(Enumerable.Repeat(float.NaN, planned + 9).ToArray());
            csr.EncodeSelected(source, selection, rows, cols, rowPointers, rowTies, planned, columns, values);
            Assert.That(rowPointers.Download(Device), Is.EqualTo(expectedPointers), name);
            Assert.That(columns.SubView(0, planned).Download(Device), Is.EqualTo(expectedColumns), name);
            Assert.That(Download(values.SubView(0, planned)), Is.EqualTo(expectedValues), name);
            Assert.That(columns.SubView(planned, 9).Download(Device), Is.All.EqualTo(-7), $"{name}: nothing written past the plan");

            // The same selection kept on the device: given its K on the matrix it was selected
            // from, a GPU backend plans and encodes without reading anything back.
            var state = Upload(new int[TopKSelection.StateInts]);
            var onDevice = topK.Select(Upload(dense), selection.Kept, scratch, state);
            int known = matrix == dense ? selection.Kept : -1;
            var deviceStaging = new EntryStaging(Upload(new int[rows * cols]), Upload(new float[rows * cols]), cols);
            var keptPointers = Upload(new int[rows + 1]);
            var keptTies = Upload(new int[rows]);
            var keptColumns = Upload(Enumerable.Repeat(-7, planned + 9).ToArray());
            var keptValues = Upload(Enumerable.Repeat(float.NaN, planned + 9).ToArray());
            var before = Device.Traffic.Snapshot();
            var keptPlan = csr.PlanSelected(source, onDevice, rows, cols, keptPointers, keptTies, deviceStaging, known);
            csr.EncodeSelected(source, onDevice, rows, cols, keptPointers, keptTies, keptPlan, deviceStaging, keptColumns, keptValues);
            if (!Device.IsCpu)
            {
                Assert.That(Device.Traffic.Syncs - before.Syncs, Is.EqualTo(known >= 0 || selection.KeepsNothing ? 0 : 1), $"{name}, kept on the device: syncs");
            }
            Assert.That(keptPlan.Count, Is.EqualTo(planned), $"{name}, kept on the device");
            Assert.That(keptPointers.Download(Device), Is.EqualTo(expectedPointers), $"{name}, kept on the device");
            Assert.That(keptColumns.SubView(0, planned).Download(Device), Is.EqualTo(expectedColumns), $"{name}, kept on the device");
            Assert.That(Download(keptValues.SubView(0, planned)), Is.EqualTo(expectedValues), $"{name}, kept on the device");
            Assert.That(keptColumns.SubView(planned, 9).Download(Device), Is.All.EqualTo(-7), $"{name}, kept on the device: nothing written past the plan");

            // The family-level call (plan and encode in one, memory from a workspace) gives the same
            // CSR, and on the CPU tells what staging slot would hold every row next time.
            using (var workspace = new ZeroFL.Engine.Memory.Workspace(Device))
            {
                int longestSeen = 0;
                for (int call = 0; call < 2; call++)
                {
                    var encoded = csr.EncodeTopK(source, selection, rows, cols, matrix == dense ? selection.Kept : -1, workspace, ref longestSeen);
                    string what = $"{name}, encode top-k call {call}";
                    Assert.That(encoded.Count, Is.EqualTo(planned), what);
                    Assert.That(encoded.RowPointers.Download(Device), Is.EqualTo(expectedPointers), what);
                    Assert.That(encoded.Columns.SubView(0, planned).Download(Device), Is.EqualTo(expectedColumns), what);
                    Assert.That(Download(encoded.Values.SubView(0, planned)), Is.EqualTo(expectedValues), what);
                }
            }

            // The one-pass (staged) encode gives the same CSR whatever the slot: the usual slot, a
            // whole row (always staged), and one entry (rows longer than that fall back to the matrix).
            int longest = Enumerable.Range(0, rows).Max(r => Enumerable.Range(0, cols).Count(c =>
                (BitConverter.SingleToUInt32Bits(matrix[r * cols + c]) & TopKKernels.MagnitudeMask) >= selection.ThresholdBits));
            foreach (int slot in new[] { EntryStaging.SlotFor(rows, cols, selection.Kept, 0), cols, 1 })
            {
                string what = $"{name}, staged with slot {slot}";
                // Stale staging (huge values, bad columns) must never reach the result.
                var staging = new EntryStaging(Upload(Enumerable.Repeat(-5, rows * slot).ToArray()),
                    Upload(Enumerable.Repeat(1e30f, rows * slot).ToArray()), slot);
                var stagedPointers = Upload(Enumerable.Repeat(-3, rows + 1).ToArray());
                var stagedTies = Upload(new int[rows]);
                var plan = csr.PlanSelected(source, selection, rows, cols, stagedPointers, stagedTies, staging);
                Assert.That(plan.Count, Is.EqualTo(expectedColumns.Count), what);
                if (Device.IsCpu)
                {
                    Assert.That(plan.Longest, Is.EqualTo(selection.KeepsNothing ? 0 : longest), what);
                    Assert.That(plan.Staged, Is.EqualTo(selection.KeepsNothing || longest <= slot), what);
                }
                else
                {
                    // GPU backends plan on the device and do not stage.
                    Assert.That(plan.Staged, Is.EqualTo(selection.KeepsNothing), what);
                }
                var stagedColumns = Upload(Enumerable.Repeat(-7, plan.Count + 9).ToArray());
                var stagedValues = Upload(Enumerable.Repeat(float.NaN, plan.Count + 9).ToArray());
                csr.EncodeSelected(source, selection, rows, cols, stagedPointers, stagedTies, plan, staging, stagedColumns, stagedValues);
                Assert.That(stagedPointers.Download(Device), Is.EqualTo(expectedPointers), what);
                Assert.That(stagedColumns.SubView(0, plan.Count).Download(Device), Is.EqualTo(expectedColumns), what);
                Assert.That(Download(stagedValues.SubView(0, plan.Count)), Is.EqualTo(expectedValues), what);
                Assert.That(stagedColumns.SubView(plan.Count, 9).Download(Device), Is.All.EqualTo(-7), $"{what}: nothing written past the plan");
            }
        }
        if (rows > 0)
        {
            // The device plan: with the selection's own K it reads nothing back; without, one int.
            var source = Upload(dense);
            foreach (int known in new[] { selection.Kept, -1 })
            {
                var devicePointers = Upload(Enumerable.Repeat(-3, rows + 1).ToArray());
                var deviceTies = Upload(new int[rows]);
                var before = Device.Traffic.Snapshot();
                int planned = csr.PlanSelectedOnDevice(source, selection, rows, cols, devicePointers, deviceTies, known);
                Assert.That(Device.Traffic.Syncs - before.Syncs, Is.EqualTo(known >= 0 || selection.KeepsNothing ? 0 : 1), $"known {known}: syncs");
                Assert.That(planned, Is.EqualTo(selection.Kept), $"known {known}");
                var hostPointers = Upload(new int[rows + 1]);
                var hostTies = Upload(new int[rows]);
                csr.PlanSelected(source, selection, rows, cols, hostPointers, hostTies);
                Assert.That(devicePointers.Download(Device), Is.EqualTo(hostPointers.Download(Device)), $"known {known}: row pointers");
                Assert.That(deviceTies.Download(Device), Is.EqualTo(hostTies.Download(Device)), $"known {known}: tie shares");
            }
        }
        if (selection.Kept == dense.Length || dense.All(v => v != 0f))
        {
            // Without kept zeros it is exactly mask-then-encode.
            var masked = Upload(new float[dense.Length]);
            topK.Mask(Upload(dense), selection, masked, scratch);
            var pointers = Upload(new int[rows + 1]);
            var maskedColumns = Upload(new int[dense.Length]);
            var maskedValues = Upload(new float[dense.Length]);
            int nonZeros = csr.Encode(masked, rows, cols, pointers, maskedColumns, maskedValues);
            var planPointers = Upload(new int[rows + 1]);
            Assert.That(csr.PlanSelected(Upload(dense), selection, rows, cols, planPointers, Upload(new int[rows])), Is.EqualTo(nonZeros));
            Assert.That(planPointers.Download(Device), Is.EqualTo(pointers.Download(Device)));
        }
    }

    [Test]
    public void EncodeSelectedRejectsTooSmallListsAndBadPlans()
    {
        var csr = Device.Kernels.Csr;
        var topK = Device.Kernels.TopK;
        var dense = Numerics.Random(6 * 5, 3);
        var source = Upload(dense);
        var selection = topK.Select(source, 10, Upload(new int[topK.ScratchLength(dense.Length)]));
        var rowPointers = Upload(new int[7]);
        var rowTies = Upload(new int[6]);
        int planned = csr.PlanSelected(source, selection, 6, 5, rowPointers, rowTies);
        Assert.That(planned, Is.EqualTo(10));
        var columns = Upload(Enumerable.Repeat(-1, 9).ToArray());
        var ex = Assert.Throws<ArgumentException>(() => csr.EncodeSelected(source, selection, 6, 5, rowPointers, rowTies, planned, columns, Upload(new float[10])));
        Assert.That(ex!.Message, Does.Contain("keeps 10 entries"));
        Assert.That(columns.Download(Device), Is.All.EqualTo(-1), "nothing written");
        Assert.Throws<ArgumentException>(() => csr.EncodeSelected(source, selection, 6, 5, rowPointers, rowTies, 31, Upload(new int[40]), Upload(new float[40])));
        Assert.Throws<ArgumentException>(() => csr.EncodeSelected(source, selection, 6, 5, rowPointers, rowTies, -1, Upload(new int[40]), Upload(new float[40])));
        Assert.Throws<ArgumentException>(() => csr.PlanSelected(source, selection, 6, 5, rowPointers, Upload(new int[5])));
        Assert.Throws<ArgumentException>(() => csr.PlanSelected(source, selection with { TiesToKeep = -1 }, 6, 5, rowPointers, rowTies));
        Assert.That(csr.PlanSelected(source, TopKSelection.None, 6, 5, rowPointers, rowTies), Is.Zero);
        Assert.That(rowPointers.Download(Device), Is.All.Zero);

        // Staging: a slot outside [1, cols] or too little room is refused before any launch.
        Assert.Throws<ArgumentException>(() => csr.PlanSelected(source, selection, 6, 5, rowPointers, rowTies,
            new EntryStaging(Upload(new int[36]), Upload(new float[36]), 6)));
        Assert.Throws<ArgumentException>(() => csr.PlanSelected(source, selection, 6, 5, rowPointers, rowTies,
            new EntryStaging(Upload(new int[36]), Upload(new float[36]), 0)));
        Assert.Throws<ArgumentException>(() => csr.PlanSelected(source, selection, 6, 5, rowPointers, rowTies,
            new EntryStaging(Upload(new int[11]), Upload(new float[12]), 2)));
    }

    [Test]
    public void StagingSlotCoversTheMeanRowTwiceOrTheLongestSeen()
    {
        Assert.That(EntryStaging.SlotFor(512, 4608, 512 * 230, 0), Is.EqualTo(2 * 230 + 64));
        Assert.That(EntryStaging.SlotFor(512, 4608, 512 * 230, 800), Is.EqualTo(900));
        Assert.That(EntryStaging.SlotFor(4, 10, 40, 0), Is.EqualTo(10), "never more than a row");
        Assert.That(EntryStaging.SlotFor(4, 10, 0, 0), Is.EqualTo(10));
        Assert.That(EntryStaging.SlotFor(3, 1000, 0, 0), Is.EqualTo(64));
    }

    private static TestCaseData Case(string name, int rows, int cols, Func<int, int, Random, bool> keep)
    {
        var random = new Random(rows * 131 + cols);
        var dense = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                dense[r * cols + c] = keep(r, c, random) ? (float)(random.NextDouble() * 2 - 1) + 1e-3f : 0f;
            }
        }
        return new TestCaseData(rows, cols, dense).SetArgDisplayNames($"{name} {rows}x{cols}");
    }

    /// <summary>A non-empty copy (device buffers of length 0 are avoided).</summary>
    private static T[] Pad<T>(T[] values) => values.Length > 0 ? values : new T[1];
}
